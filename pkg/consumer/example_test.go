package consumer_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/natsembed"
)

// A new consumer service: a handler that applies one event, wrapped in the standard
// pipeline (ledger, retries, dead letters). Here the downstream system is a print; a real
// one returns failure.Permanent for what can never apply and plain errors (transient) for
// outages.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	srv, _ := natsembed.Start(natsembed.Config{Port: -1, StoreDir: dir})
	defer srv.Shutdown()
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}})
	js.CreateStream(ctx, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>", "redrive.>"}})

	done := make(chan struct{})
	apply := func(ctx context.Context, m *consumer.Message) error {
		if m.Event.EntityID == "0" {
			return failure.Permanent(fmt.Errorf("no such entity"))
		}
		fmt.Println("applied", m.Event.Type, m.Event.EntityID)
		close(done)
		return nil
	}
	p, err := consumer.NewPipeline(ctx, js, consumer.Config{
		Name:           "printer",
		FilterSubjects: []string{"events.*.asset.>"},
	}, consumer.PerMessage(apply), consumer.PipelineOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan error)
	go func() { stopped <- p.Run(runCtx) }()

	js.Publish(ctx, "events.demo.asset.42.updated", []byte(`{"specversion":"1.0","id":"e1","type":"dev.fieldstream.asset.updated",
		"tenant":"demo","entity":"asset","entityid":"42","action":"updated","time":"2026-11-29T12:00:00Z","data":{}}`))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Println("timed out")
	}
	stop()
	fmt.Println("drained:", <-stopped)
	// Output:
	// applied dev.fieldstream.asset.updated 42
	// drained: <nil>
}
