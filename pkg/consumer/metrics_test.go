package consumer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/event"
)

// TestMetricsCountOutcomes: the middleware reads every outcome from the error the layers
// inside it return.
func TestMetricsCountOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := consumer.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := []error{
		nil, nil,
		consumer.ErrAlreadyApplied, fmt.Errorf("seq 9: %w", consumer.ErrAlreadyApplied),
		consumer.ErrSuperseded,
		errUnavailable,
		fmt.Errorf("%w (permanent): %w", consumer.ErrDeadLettered, errRejected),
		errRejected, // not dead-lettered: no outcome yet
	}
	batch := make([]*consumer.Message, len(outcomes))
	for i := range batch {
		tenant := "acme"
		if i%2 == 1 {
			tenant = "globex"
		}
		batch[i] = &consumer.Message{Event: event.CloudEvent{Tenant: tenant, ReceivedTime: time.Now().Add(-time.Second)}}
	}
	batch[5].Meta = &jetstream.MsgMetadata{NumDelivered: 3} // a redelivery
	handler := func(context.Context, []*consumer.Message) []error { return outcomes }
	errs := metrics.Middleware("assets")(handler)(context.Background(), batch)
	for i := range errs {
		if errs[i] != outcomes[i] {
			t.Errorf("message %d: error %v changed to %v", i, outcomes[i], errs[i])
		}
	}
	want := `
# HELP fieldstream_consumer_messages_total Messages by consumer, tenant and outcome: applied, duplicate (ledger had it), stale (a newer change was applied), retry (handed back to JetStream), dead_lettered.
# TYPE fieldstream_consumer_messages_total counter
fieldstream_consumer_messages_total{consumer="assets",outcome="applied",tenant="acme"} 1
fieldstream_consumer_messages_total{consumer="assets",outcome="applied",tenant="globex"} 1
fieldstream_consumer_messages_total{consumer="assets",outcome="dead_lettered",tenant="acme"} 1
fieldstream_consumer_messages_total{consumer="assets",outcome="duplicate",tenant="acme"} 1
fieldstream_consumer_messages_total{consumer="assets",outcome="duplicate",tenant="globex"} 1
fieldstream_consumer_messages_total{consumer="assets",outcome="retry",tenant="globex"} 1
fieldstream_consumer_messages_total{consumer="assets",outcome="stale",tenant="acme"} 1
# HELP fieldstream_consumer_redeliveries_total Deliveries of messages JetStream had delivered before (a retry, an expired AckWait, a replica that died holding it).
# TYPE fieldstream_consumer_redeliveries_total counter
fieldstream_consumer_redeliveries_total{consumer="assets"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "fieldstream_consumer_messages_total", "fieldstream_consumer_redeliveries_total"); err != nil {
		t.Error(err)
	}
	if got := histogramCount(t, reg, "fieldstream_consumer_apply_lag_seconds"); got != 2 {
		t.Errorf("apply lag observed %d times, want 2", got)
	}
	if got := histogramCount(t, reg, "fieldstream_consumer_batch_size"); got != 1 {
		t.Errorf("batch size observed %d times, want 1", got)
	}
}

// histogramCount is the number of observations of the histogram name (one series).
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("no histogram %s", name)
	return 0
}

// TestMetricsBoundTenantLabels: past MaxTenantLabels tenants, further ones are counted as
// tenant="other", so the series stay bounded whatever tenants send.
func TestMetricsBoundTenantLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := consumer.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	n := consumer.MaxTenantLabels + 50
	batch := make([]*consumer.Message, n)
	for i := range batch {
		batch[i] = &consumer.Message{Event: event.CloudEvent{Tenant: fmt.Sprintf("t%d", i)}}
	}
	handler := func(_ context.Context, b []*consumer.Message) []error { return make([]error, len(b)) }
	metrics.Middleware("assets")(handler)(context.Background(), batch)
	if got := testutil.CollectAndCount(reg, "fieldstream_consumer_messages_total"); got != consumer.MaxTenantLabels+1 {
		t.Errorf("%d series for %d tenants, want %d (+ other)", got, n, consumer.MaxTenantLabels)
	}
}
