package dashboard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/services/fsctl/dashboard"
	"github.com/fieldstream/fieldstream/streams"
)

// TestMetricsExportBacklogPerTenant: the collector exports each consumer's backlog, in total
// and per tenant of the tenants bucket (the rest as "other"), and the streams' state.
func TestMetricsExportBacklogPerTenant(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, js := newStreams(t)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: streams.TenantsBucket, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"acme", "globex"} {
		if _, err := kv.Put(ctx, tenant, []byte(`{"secret":"never read"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, streams.Events, jetstream.ConsumerConfig{Durable: "workorders",
		FilterSubjects: []string{"events.*.work_order.>"}, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "events.acme.work_order.1.updated", "events.acme.work_order.2.updated", "events.acme.work_order.3.created",
		"events.globex.work_order.9.updated", "events.globex.work_order.9.completed",
		"events.initech.work_order.4.updated", // a tenant no longer in the bucket
		"events.acme.asset.5.updated")         // not the consumer's
	dash, err := dashboard.New(js, dashboard.Options{Reuse: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(dash.Metrics(dashboard.MetricsOptions{TenantBacklogEvery: 10 * time.Millisecond}))

	want := `
# HELP fieldstream_consumer_tenant_backlog_messages Messages of one tenant the consumer has not acknowledged (from its ack floor), counted at most every TenantBacklogEvery; tenants past MaxTenants are tenant="other".
# TYPE fieldstream_consumer_tenant_backlog_messages gauge
fieldstream_consumer_tenant_backlog_messages{consumer="workorders",tenant="acme"} 3
fieldstream_consumer_tenant_backlog_messages{consumer="workorders",tenant="globex"} 2
fieldstream_consumer_tenant_backlog_messages{consumer="workorders",tenant="other"} 1
`
	natstest.Eventually(t, 10*time.Second, "the backlog per tenant", func() bool {
		return testutil.GatherAndCompare(reg, strings.NewReader(want), "fieldstream_consumer_tenant_backlog_messages") == nil
	})
	totals := `
# HELP fieldstream_consumer_backlog_messages Messages not yet settled: pending plus acknowledgement pending.
# TYPE fieldstream_consumer_backlog_messages gauge
fieldstream_consumer_backlog_messages{consumer="workorders",stream="EVENTS"} 6
# HELP fieldstream_stream_messages Messages in the stream.
# TYPE fieldstream_stream_messages gauge
fieldstream_stream_messages{stream="DLQ"} 0
fieldstream_stream_messages{stream="EVENTS"} 7
# HELP fieldstream_jetstream_up 1 when the last read of JetStream's state succeeded.
# TYPE fieldstream_jetstream_up gauge
fieldstream_jetstream_up 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(totals), "fieldstream_consumer_backlog_messages", "fieldstream_stream_messages", "fieldstream_jetstream_up"); err != nil {
		t.Error(err)
	}
	// Counting left no consumer behind on EVENTS.
	events, err := js.Stream(ctx, streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "the counting consumers to go", func() bool {
		n := 0
		for range events.ListConsumers(ctx).Info() {
			n++
		}
		return n == 1
	})
}
