package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldstream/fieldstream/pkg/failure"
)

// Metrics are the Prometheus metrics of consumers; one value serves every consumer of a
// process (the consumer is a label).
type Metrics struct {
	outcomes *prometheus.CounterVec
	lag      *prometheus.HistogramVec
	batches  *prometheus.HistogramVec
}

// NewMetrics registers the consumer metrics with reg, or returns those already registered
// there: every consumer of a process counts into the same metrics.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldstream_consumer_messages_total",
			Help: "Messages by consumer and outcome: applied, duplicate (ledger had it), stale (a newer change was applied), retry (handed back to JetStream), dead_lettered.",
		}, []string{"consumer", "outcome"}),
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
	applied := m.outcomes.WithLabelValues(consumer, "applied")
	duplicate := m.outcomes.WithLabelValues(consumer, "duplicate")
	stale := m.outcomes.WithLabelValues(consumer, "stale")
	retry := m.outcomes.WithLabelValues(consumer, "retry")
	dead := m.outcomes.WithLabelValues(consumer, "dead_lettered")
	lag := m.lag.WithLabelValues(consumer)
	batches := m.batches.WithLabelValues(consumer)
	return func(next BatchHandler) BatchHandler {
		return func(ctx context.Context, batch []*Message) []error {
			batches.Observe(float64(len(batch)))
			errs := next(ctx, batch)
			now := time.Now()
			for i, err := range errs {
				switch {
				case err == nil:
					applied.Inc()
					if rt := batch[i].Event.ReceivedTime; !rt.IsZero() {
						lag.Observe(now.Sub(rt).Seconds())
					}
				case errors.Is(err, ErrAlreadyApplied):
					duplicate.Inc()
				case errors.Is(err, ErrSuperseded):
					stale.Inc()
				case errors.Is(err, ErrDeadLettered):
					dead.Inc()
				case failure.ClassOf(err) == failure.ClassTransient:
					retry.Inc()
				}
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
