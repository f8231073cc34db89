// Command replay measures what a replay costs a consumer: a window of stored events is
// consumed through the consumer pipeline once with an empty ledger (every event applied, to
// a downstream system that does nothing), then replayed to the running consumer the way
// `fsctl replay` does it (copied to REPLAY, every event skipped by the ledger), beside
// nats.go's raw fetch-and-ack rate on the same stream in the same run. It prints one line:
//
//	replay skipped_per_s=… applied_per_s=… raw_consume_per_s=…
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/streams"
	"github.com/fieldstream/fieldstream/test/harness"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench replay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	bin := fs.String("nats-server-bin", "bin/nats-server", "nats-server binary to run")
	n := fs.Int("events", 200000, "events in the replayed window")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the skipped run to this file")
	batchSize := fs.Int("batch", 1000, "the consumer's batch size")
	recent := fs.Int("recent", 0, "applied event ids the restarted consumer keeps in memory (0: the default, -1: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fieldstream-replay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	url, stop, err := harness.StartNATSProcess(ctx, *bin, dir)
	if err != nil {
		return err
	}
	defer stop()
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := streams.Apply(ctx, js, streams.Options{}); err != nil {
		return err
	}
	t0 := time.Now()
	if err := publish(ctx, js, *n); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "stored %d events in %s\n", *n, time.Since(t0).Round(time.Millisecond))

	raw, err := rawConsume(ctx, js, *n)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "raw fetch and ack: %.0f/s\n", raw)
	// The consumer applies the window once (its ledger was empty), then an operator replays
	// the window to it (fsctl replay): every event comes back and is skipped.
	var applied atomic.Int64
	noop := func(context.Context, *consumer.Message) error { applied.Add(1); return nil }
	t0 = time.Now()
	p, err := consumer.NewPipeline(ctx, js, consumer.Config{Name: "bench", FilterSubjects: []string{"events.bench.>"},
		BatchSize: *batchSize, MaxAckPending: 4 * *batchSize}, consumer.PerMessage(noop), consumer.PipelineOptions{})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	defer func() { cancel(); <-done }()
	if err := drained(ctx, js, "EVENTS", uint64(*n)); err != nil {
		return err
	}
	appliedRate := float64(*n) / time.Since(t0).Seconds()
	fmt.Fprintf(stderr, "pipeline, empty ledger (all applied): %.0f/s\n", appliedRate)

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t0 = time.Now()
	res, err := ops.Replay(ctx, js, ops.ReplaySpec{Consumer: "bench", FromSeq: 1}, false, nil)
	if err != nil {
		return err
	}
	if res.Sent != *n {
		return fmt.Errorf("replay sent %d of %d events", res.Sent, *n)
	}
	if err := drained(ctx, js, "REPLAY", uint64(*n)); err != nil {
		return err
	}
	skipped := float64(*n) / time.Since(t0).Seconds()
	fmt.Fprintf(stderr, "replay through fsctl's path (copy to REPLAY, all skipped): %.0f/s; applied during it: %d (want 0)\n", skipped, applied.Load()-int64(*n))
	if applied.Load() != int64(*n) {
		return fmt.Errorf("the replay applied %d events again", applied.Load()-int64(*n))
	}
	// The same window re-read by a fresh start of the consumer (its durable recreated):
	// the consumer's own skip rate, without the copy to REPLAY.
	cancel()
	<-done
	done <- nil
	if err := js.DeleteConsumer(ctx, "EVENTS", "bench"); err != nil {
		return err
	}
	t0 = time.Now()
	p2, err := consumer.NewPipeline(ctx, js, consumer.Config{Name: "bench", FilterSubjects: []string{"events.bench.>"},
		BatchSize: *batchSize, MaxAckPending: 4 * *batchSize}, consumer.PerMessage(noop), consumer.PipelineOptions{RecentApplied: *recent})
	if err != nil {
		return err
	}
	r2ctx, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	go func() { _ = p2.Run(r2ctx) }()
	if err := drained(ctx, js, "EVENTS", uint64(*n)); err != nil {
		return err
	}
	reread := float64(*n) / time.Since(t0).Seconds()
	fmt.Fprintf(stderr, "the consumer restarted from the window's start (all skipped): %.0f/s\n", reread)
	fmt.Fprintf(stdout, "replay skipped_per_s=%.0f applied_per_s=%.0f raw_consume_per_s=%.0f\n", reread, appliedRate, raw)
	return nil
}

// publish stores n asset events, each about its own asset.
func publish(ctx context.Context, js jetstream.JetStream, n int) error {
	now := time.Now()
	for i := range n {
		id := strconv.FormatInt(2274033731790001+int64(i)*16, 10)
		evID := "bench:" + strconv.Itoa(i)
		ce := event.New(event.SourceServiceTrade, "bench", "asset", id, "updated", evID, now, now,
			[]byte(`{"action":"updated","entity":{"type":"asset","id":`+id+`},"changeset":[{"field":"status","oldValue":"active","newValue":"inactive"}]}`))
		msg := &nats.Msg{Subject: "events.bench.asset." + id + ".updated", Data: ce.AppendJSON(nil), Header: nats.Header{jetstream.MsgIDHeader: []string{evID}}}
		if _, err := js.PublishMsgAsync(msg); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-time.After(5 * time.Minute):
		return errors.New("publish did not complete")
	}
}

// rawConsume fetches and acks every event with nats.go alone.
func rawConsume(ctx context.Context, js jetstream.JetStream, n int) (float64, error) {
	c, err := js.CreateConsumer(ctx, "EVENTS", jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 5000})
	if err != nil {
		return 0, err
	}
	var got atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	cc, err := c.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if got.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return 0, errors.New("raw consume did not finish")
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// drained waits until consumer "bench" on stream has acknowledged n messages and has
// nothing pending.
func drained(ctx context.Context, js jetstream.JetStream, stream string, n uint64) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		c, err := js.Consumer(ctx, stream, "bench")
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= n {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumer bench on %s did not drain within 10 minutes", stream)
		}
		time.Sleep(20 * time.Millisecond) // polling the consumer's progress
	}
}
