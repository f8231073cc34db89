package consumer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
		batch[i] = &consumer.Message{Event: event.CloudEvent{ReceivedTime: time.Now().Add(-time.Second)}}
	}
	handler := func(context.Context, []*consumer.Message) []error { return outcomes }
	errs := metrics.Middleware("assets")(handler)(context.Background(), batch)
	for i := range errs {
		if errs[i] != outcomes[i] {
			t.Errorf("message %d: error %v changed to %v", i, outcomes[i], errs[i])
		}
	}
	want := `
# HELP fieldstream_consumer_messages_total Messages by consumer and outcome: applied, duplicate (ledger had it), stale (a newer change was applied), retry (handed back to JetStream), dead_lettered.
# TYPE fieldstream_consumer_messages_total counter
fieldstream_consumer_messages_total{consumer="assets",outcome="applied"} 2
fieldstream_consumer_messages_total{consumer="assets",outcome="dead_lettered"} 1
fieldstream_consumer_messages_total{consumer="assets",outcome="duplicate"} 2
fieldstream_consumer_messages_total{consumer="assets",outcome="retry"} 1
fieldstream_consumer_messages_total{consumer="assets",outcome="stale"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "fieldstream_consumer_messages_total"); err != nil {
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
