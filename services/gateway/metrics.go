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
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
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
	for _, c := range []prometheus.Collector{m.requests, m.events, m.duplicates, m.latency, m.batches, m.fallbacks} {
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

func (m *metrics) batch(events int) { m.batches.Observe(float64(events)) }

func (m *metrics) fallback(reason string) { m.fallbacks.WithLabelValues(reason).Inc() }

func (g *Gateway) metricsHandler() http.Handler {
	return promhttp.HandlerFor(g.cfg.Metrics, promhttp.HandlerOpts{})
}
