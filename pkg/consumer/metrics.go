package consumer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
)

// Metrics are the Prometheus metrics of consumers; one value serves every consumer of a
// process (the consumer is a label).
//
// Outcomes are counted per tenant, so that an operator of many contractors sees whose
// events fail; the tenant label takes at most MaxTenantLabels values per process (further
// tenants count as tenant="other"), so a flood of tenants cannot flood Prometheus.
type Metrics struct {
	outcomes     *prometheus.CounterVec
	redeliveries *prometheus.CounterVec
	lag          *prometheus.HistogramVec
	batches      *prometheus.HistogramVec
	tenants      *boundedLabels
}

// MaxTenantLabels bounds the tenant label values of the consumer metrics.
const MaxTenantLabels = 1000

// NewMetrics registers the consumer metrics with reg, or returns those already registered
// there: every consumer of a process counts into the same metrics.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldstream_consumer_messages_total",
			Help: "Messages by consumer, tenant and outcome: applied, duplicate (ledger had it), stale (a newer change was applied), retry (handed back to JetStream), dead_lettered.",
		}, []string{"consumer", "tenant", "outcome"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldstream_consumer_redeliveries_total",
			Help: "Deliveries of messages JetStream had delivered before (a retry, an expired AckWait, a replica that died holding it).",
		}, []string{"consumer"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fieldstream_consumer_apply_lag_seconds",
			Help:    "Time from the gateway receiving an event to the consumer applying it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}, []string{"consumer"}),
		batches: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fieldstream_consumer_batch_size",
			Help:    "Messages per batch handed to the handler.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}, []string{"consumer"}),
	}
	var err error
	if m.outcomes, err = register(reg, m.outcomes); err != nil {
		return nil, err
	}
	if m.redeliveries, err = register(reg, m.redeliveries); err != nil {
		return nil, err
	}
	m.tenants = &boundedLabels{max: MaxTenantLabels, seen: map[string]bool{}}
	if m.lag, err = register(reg, m.lag); err != nil {
		return nil, err
	}
	if m.batches, err = register(reg, m.batches); err != nil {
		return nil, err
	}
	return m, nil
}

// Middleware counts the outcome of every message of consumer, read from the error the
// layers inside it return, and, for applied ones, the time since the gateway received the
// event. Place it outermost, so that it sees every outcome.
func (m *Metrics) Middleware(consumer string) Middleware {
	lag := m.lag.WithLabelValues(consumer)
	batches := m.batches.WithLabelValues(consumer)
	redelivered := m.redeliveries.WithLabelValues(consumer)
	return func(next BatchHandler) BatchHandler {
		return func(ctx context.Context, batch []*Message) []error {
			batches.Observe(float64(len(batch)))
			for _, msg := range batch {
				if msg.Meta != nil && msg.Meta.NumDelivered > 1 {
					redelivered.Inc()
				}
			}
			errs := next(ctx, batch)
			now := time.Now()
			for i, err := range errs {
				outcome := ""
				switch {
				case err == nil:
					outcome = "applied"
					if rt := batch[i].Event.ReceivedTime; !rt.IsZero() {
						lag.Observe(now.Sub(rt).Seconds())
					}
				case errors.Is(err, ErrAlreadyApplied):
					outcome = "duplicate"
				case errors.Is(err, ErrSuperseded):
					outcome = "stale"
				case errors.Is(err, ErrDeadLettered):
					outcome = "dead_lettered"
				case failure.ClassOf(err) == failure.ClassTransient:
					outcome = "retry"
				default:
					continue
				}
				m.outcomes.WithLabelValues(consumer, m.tenants.value(tenantOf(batch[i])), outcome).Inc()
			}
			return errs
		}
	}
}

// register registers c with reg and returns it, or the collector of the same description
// registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// tenantOf is the tenant of m's event: from its subject, or (a message built by hand) its
// envelope.
func tenantOf(m *Message) string {
	if m.Msg == nil && m.Replay == nil {
		return m.Event.Tenant
	}
	tenant, _, _, _, _ := event.SubjectParts(m.Subject())
	return tenant
}

// boundedLabels hands out at most max distinct label values; later ones become "other".
// Safe for concurrent use.
type boundedLabels struct {
	max  int
	mu   sync.Mutex
	seen map[string]bool
}

func (b *boundedLabels) value(v string) string {
	if v == "" {
		return "unknown"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[v] {
		return v
	}
	if len(b.seen) >= b.max {
		return "other"
	}
	b.seen[v] = true
	return v
}
