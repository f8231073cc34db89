package dashboard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/streams"
)

// MetricsOptions configure Metrics; zero fields take the defaults in their comments.
type MetricsOptions struct {
	// TenantBacklogEvery is how often the backlog per tenant is counted (default 1 min).
	// It is counted only for consumers that have a backlog, with one short-lived consumer
	// per tenant on the server, so it costs nothing while everything is caught up.
	TenantBacklogEvery time.Duration
	// MaxTenants bounds the tenant label (default 500): the tenants of the tenants bucket
	// in name order up to this many; the backlog of the rest is tenant="other".
	MaxTenants int
}

// Metrics exports what the dashboard reads as Prometheus metrics — the side of fieldstream
// that lives in JetStream, which no service process can count: streams' messages, bytes
// and limits, each consumer's backlog (in total and per tenant), unacknowledged and
// redelivered messages, ack floor and lag, and the dead letters waiting per consumer. The
// alerts of deploy/helm/fieldstream/files/prometheus-rules.yml read them.
//
// A scrape reads the dashboard's Snapshot (shared with open pages: one read per Reuse).
// The backlog per tenant is refreshed in the background at most every TenantBacklogEvery
// and exported as last counted. Register it with a prometheus.Registerer.
type Metrics struct {
	d    *Dashboard
	opts MetricsOptions

	mu        sync.Mutex
	tenants   map[string]map[string]uint64 // consumer → tenant → backlog
	countedAt time.Time
	counting  bool
}

// Metrics returns the Prometheus collector of d.
func (d *Dashboard) Metrics(opts MetricsOptions) *Metrics {
	if opts.TenantBacklogEvery <= 0 {
		opts.TenantBacklogEvery = time.Minute
	}
	if opts.MaxTenants <= 0 {
		opts.MaxTenants = 500
	}
	return &Metrics{d: d, opts: opts, tenants: map[string]map[string]uint64{}}
}

var (
	descUp            = prometheus.NewDesc("fieldstream_jetstream_up", "1 when the last read of JetStream's state succeeded.", nil, nil)
	descStreamMsgs    = prometheus.NewDesc("fieldstream_stream_messages", "Messages in the stream.", []string{"stream"}, nil)
	descStreamBytes   = prometheus.NewDesc("fieldstream_stream_bytes", "Bytes the stream holds.", []string{"stream"}, nil)
	descStreamMax     = prometheus.NewDesc("fieldstream_stream_max_bytes", "The stream's max_bytes; -1: no limit.", []string{"stream"}, nil)
	descStreamLastSeq = prometheus.NewDesc("fieldstream_stream_last_sequence", "The stream's last sequence: its rate is the stream's ingest rate.", []string{"stream"}, nil)
	descStorage       = prometheus.NewDesc("fieldstream_jetstream_storage_bytes", "File storage the account uses.", nil, nil)
	descStorageMax    = prometheus.NewDesc("fieldstream_jetstream_storage_max_bytes", "File storage the account may use; -1: no limit of the account's (the server's max_file_store still applies).", nil, nil)
	descPending       = prometheus.NewDesc("fieldstream_consumer_pending_messages", "Messages the consumer's filters select that it has not been delivered yet.", []string{"stream", "consumer"}, nil)
	descAckPending    = prometheus.NewDesc("fieldstream_consumer_ack_pending_messages", "Messages delivered and not yet acknowledged.", []string{"stream", "consumer"}, nil)
	descBacklog       = prometheus.NewDesc("fieldstream_consumer_backlog_messages", "Messages not yet settled: pending plus acknowledgement pending.", []string{"stream", "consumer"}, nil)
	descRedelivered   = prometheus.NewDesc("fieldstream_consumer_redelivered_messages", "Messages delivered more than once and not yet acknowledged.", []string{"stream", "consumer"}, nil)
	descAckFloor      = prometheus.NewDesc("fieldstream_consumer_ack_floor_sequence", "Stream sequence up to which everything is acknowledged: a consumer that stops acknowledging stops moving it.", []string{"stream", "consumer"}, nil)
	descLag           = prometheus.NewDesc("fieldstream_consumer_lag_seconds", "Age of the oldest message the consumer has not acknowledged; 0 when caught up.", []string{"stream", "consumer"}, nil)
	descPaused        = prometheus.NewDesc("fieldstream_consumer_paused", "1 while the consumer is paused.", []string{"stream", "consumer"}, nil)
	descDeadLetters   = prometheus.NewDesc("fieldstream_dead_letters", "Dead letters waiting in DLQ, by the consumer that gave up on them.", []string{"consumer"}, nil)
	descTenantBacklog = prometheus.NewDesc("fieldstream_consumer_tenant_backlog_messages", "Messages of one tenant the consumer has not acknowledged (from its ack floor), counted at most every TenantBacklogEvery; tenants past MaxTenants are tenant=\"other\".", []string{"consumer", "tenant"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descStreamMsgs, descStreamBytes, descStreamMax, descStreamLastSeq, descStorage, descStorageMax,
		descPending, descAckPending, descBacklog, descRedelivered, descAckFloor, descLag, descPaused, descDeadLetters, descTenantBacklog} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), m.d.opts.Timeout)
	defer cancel()
	snap, err := m.d.Snapshot(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, s := range snap.Streams {
		gauge(descStreamMsgs, float64(s.Messages), s.Name)
		gauge(descStreamBytes, float64(s.Bytes), s.Name)
		gauge(descStreamLastSeq, float64(s.LastSeq), s.Name)
		if st, err := m.d.js.Stream(ctx, s.Name); err == nil {
			gauge(descStreamMax, float64(max(st.CachedInfo().Config.MaxBytes, -1)), s.Name)
		}
	}
	if ai, err := m.d.js.AccountInfo(ctx); err == nil {
		gauge(descStorage, float64(ai.Store))
		gauge(descStorageMax, float64(max(ai.Limits.MaxStore, -1)))
	}
	deadLetters := map[string]int{}
	for _, g := range snap.DeadLetters {
		deadLetters[g.Consumer] += g.Count
	}
	var backlogged []Consumer
	for _, c := range snap.Consumers {
		gauge(descPending, float64(c.Pending), c.Stream, c.Name)
		gauge(descAckPending, float64(c.AckPending), c.Stream, c.Name)
		gauge(descBacklog, float64(c.Backlog()), c.Stream, c.Name)
		gauge(descRedelivered, float64(c.Redelivered), c.Stream, c.Name)
		gauge(descAckFloor, float64(c.AckFloor), c.Stream, c.Name)
		gauge(descLag, c.LagSeconds, c.Stream, c.Name)
		paused := 0.0
		if c.Paused {
			paused = 1
		}
		gauge(descPaused, paused, c.Stream, c.Name)
		if c.Stream == streams.Events {
			if _, ok := deadLetters[c.Name]; !ok {
				deadLetters[c.Name] = 0
			}
			backlogged = append(backlogged, c)
		}
	}
	for consumer, n := range deadLetters {
		gauge(descDeadLetters, float64(n), consumer)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.counting && m.d.opts.Now().Sub(m.countedAt) >= m.opts.TenantBacklogEvery {
		m.counting = true
		go m.countTenants(backlogged)
	}
	for consumer, byTenant := range m.tenants {
		for tenant, n := range byTenant {
			gauge(descTenantBacklog, float64(n), consumer, tenant)
		}
	}
}

// countTenants counts the backlog of every consumer of EVENTS per tenant and keeps it for
// Collect. A consumer without backlog has none for any tenant, which costs no request.
func (m *Metrics) countTenants(consumers []Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.TenantBacklogEvery)
	defer cancel()
	counted := map[string]map[string]uint64{}
	tenants, err := m.tenantNames(ctx)
	if err == nil {
		for _, c := range consumers {
			if counted[c.Name], err = m.consumerTenants(ctx, c, tenants); err != nil {
				break
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.counting = false
	if err != nil {
		m.d.opts.Logger.Warn().Err(err).Msg("dashboard: backlog per tenant not counted")
		return // keep the last count
	}
	m.tenants, m.countedAt = counted, m.d.opts.Now()
}

// tenantNames are the keys of the tenants bucket, read from its stream's subjects (never
// its values, which hold the tenants' secrets), in name order, at most MaxTenants.
func (m *Metrics) tenantNames(ctx context.Context) ([]string, error) {
	s, err := m.d.js.Stream(ctx, "KV_"+streams.TenantsBucket)
	if err != nil {
		return nil, fmt.Errorf("tenants bucket: %w", err)
	}
	prefix := "$KV." + streams.TenantsBucket + "."
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, fmt.Errorf("tenants bucket: %w", err)
	}
	names := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		names = append(names, strings.TrimPrefix(subj, prefix))
	}
	slices.Sort(names)
	return names[:min(len(names), m.opts.MaxTenants)], nil
}

// consumerTenants counts c's backlog per tenant: for each tenant, how many messages its
// filters select for that tenant past its ack floor (so acknowledged messages above the
// floor count too: a bound, exact when it acknowledges in order). Each count is a
// short-lived ephemeral consumer on the server. What the tenants counted do not account
// for is tenant="other".
func (m *Metrics) consumerTenants(ctx context.Context, c Consumer, tenants []string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(tenants)+1)
	var sum uint64
	for _, t := range tenants {
		out[t] = 0
		if c.Backlog() == 0 {
			continue
		}
		filters := tenantFilters(c.FilterSubjects, t)
		if len(filters) == 0 {
			continue
		}
		eph, err := m.d.js.CreateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
			Description:       "fieldstream dashboard: backlog of " + c.Name + " for tenant " + t,
			FilterSubjects:    filters,
			DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:       c.AckFloor + 1,
			AckPolicy:         jetstream.AckNonePolicy,
			InactiveThreshold: 30 * time.Second,
			MemoryStorage:     true,
			Replicas:          1,
		})
		if err != nil {
			return nil, fmt.Errorf("backlog of %s for %s: %w", c.Name, t, err)
		}
		info := eph.CachedInfo()
		out[t] = info.NumPending
		sum += info.NumPending
		_ = m.d.js.DeleteConsumer(ctx, c.Stream, info.Name) // else it goes at its inactive threshold
	}
	if b := c.Backlog(); b > sum {
		out["other"] = b - sum
	} else {
		out["other"] = 0
	}
	return out, nil
}

// tenantFilters narrows a consumer's filter subjects (events.<tenant>.<entity>.…) to one
// tenant; filters that cannot select the tenant's events are left out.
func tenantFilters(filters []string, tenant string) []string {
	if len(filters) == 0 {
		filters = []string{event.SubjectPrefix + ".>"}
	}
	var out []string
	for _, f := range filters {
		tok := strings.Split(f, ".")
		if len(tok) < 2 || tok[0] != event.SubjectPrefix {
			continue
		}
		switch tok[1] {
		case ">":
			out = append(out, event.SubjectPrefix+"."+tenant+".>")
		case "*", tenant:
			tok[1] = tenant
			out = append(out, strings.Join(tok, "."))
		}
	}
	return out
}
