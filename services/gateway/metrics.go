package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	requests   *prometheus.CounterVec
	events     *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	latency    prometheus.Histogram
	batches    prometheus.Histogram
	fallbacks  *prometheus.CounterVec
	storeDown  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, tenants Tenants) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldstream_gateway_requests_total",
			Help: "Webhook requests by tenant, source, outcome (ok or the error code of the answer) and HTTP status. Unknown tenants count as tenant=\"unknown\", so the tenants of the directory bound the series.",
		}, []string{"tenant", "source", "outcome", "status"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldstream_gateway_events_stored_total",
			Help: "Events newly stored in JetStream.",
		}, []string{"tenant", "source"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldstream_gateway_duplicates_total",
			Help: "Events JetStream already had (same message id within the duplicate window): acknowledged 2xx, stored once.",
		}, []string{"tenant", "source"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fieldstream_gateway_publish_seconds",
			Help:    "Time from the first publish of a request's events to the last acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fieldstream_gateway_commit_batch_events",
			Help:    "Events per group commit: the events of concurrent requests sent as one atomic batch (1: a lone event, published alone). Refused batches count too.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldstream_gateway_commit_fallbacks_total",
			Help: "Requests published event by event instead of in a group commit, by reason: seen (an event published lately, likely a repeat) or the JetStream error code that refused their batch.",
		}, []string{"reason"}),
	}
	m.storeDown = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fieldstream_gateway_jetstream_unavailable",
		Help: "1 while JetStream is not storing (publishes unanswered or refused for want of resources): webhooks are answered 503 at once until a probe publish succeeds.",
	})
	rejected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fieldstream_gateway_tenant_records_rejected",
		Help: "Tenants whose newest record in the tenants bucket does not parse: each is served from its last good record, or not at all if it has none. `fsctl status` lists them.",
	}, func() float64 { return float64(len(tenants.Rejected())) })
	for _, c := range []prometheus.Collector{m.requests, m.events, m.duplicates, m.latency, m.batches, m.fallbacks, m.storeDown, rejected} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gateway metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) request(tenant, source, outcome string, status int) {
	m.requests.WithLabelValues(tenant, source, outcome, strconv.Itoa(status)).Inc()
}

func (m *metrics) published(tenant, source string, r publishResult, took time.Duration) {
	m.events.WithLabelValues(tenant, source).Add(float64(r.Stored))
	if r.Duplicates > 0 {
		m.duplicates.WithLabelValues(tenant, source).Add(float64(r.Duplicates))
	}
	m.latency.Observe(took.Seconds())
}

func (m *metrics) unavailable(down bool) {
	if down {
		m.storeDown.Set(1)
	} else {
		m.storeDown.Set(0)
	}
}

func (m *metrics) batch(events int) { m.batches.Observe(float64(events)) }

func (m *metrics) fallback(reason string) { m.fallbacks.WithLabelValues(reason).Inc() }

func (g *Gateway) metricsHandler() http.Handler {
	return promhttp.HandlerFor(g.cfg.Metrics, promhttp.HandlerOpts{})
}
