// Command replay measures what replaying costs, on one nats-server process, in one run:
// 200,000 stored events consumed by nats.go's raw fetch-and-ack; through the consumer
// pipeline with an empty ledger (every event applied to a downstream system that does
// nothing) and, restarted, with a full one (every event skipped); and `fsctl replay` run as
// its own process end to end over the same window, once to a consumer that applied it
// (every event skipped) and once to one that never saw it (every event applied). It prints
// one line:
//
//	replay skipped_per_s=… applied_per_s=… raw_consume_per_s=… fsctl_replay_per_s=… fsctl_replay_applied_per_s=… extra_stored_bytes=…
//
// extra_stored_bytes is how much the server's stream storage grew by the replay of the
// applied window: what a replay stores beside the events it re-delivers. The server runs
// with nats-server's default fsync (every two minutes) and the ledgers write their claims
// one by one, as bin/fieldstream does on such a server; -sync-always runs it as production
// does (fsync before every acknowledgement), the ledgers writing atomic batches.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/streams"
	"github.com/fieldstream/fieldstream/test/harness"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench replay:", err)
		os.Exit(1)
	}
}

type bench struct {
	js        jetstream.JetStream
	url       string
	n         int
	batchSize int
	fsctl     string
	writes    consumer.LedgerWrites
	stderr    io.Writer
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	bin := fs.String("nats-server-bin", "bin/nats-server", "nats-server binary to run")
	fsctl := fs.String("fsctl-bin", "bin/fsctl", "fsctl binary to run")
	n := fs.Int("events", 200000, "events in the replayed window")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the applying run to this file")
	batchSize := fs.Int("batch", 1000, "the consumers' batch size")
	always := fs.Bool("sync-always", false, "run nats-server with sync_interval: always (fsync before every acknowledgement, as deploy/nats-server.conf does)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fieldstream-replay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var serverArgs []string
	if *always {
		conf := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(conf, []byte("jetstream { sync_interval: always }\n"), 0o600); err != nil {
			return err
		}
		serverArgs = []string{"-c", conf}
	}
	url, stop, err := harness.StartNATSProcess(ctx, *bin, filepath.Join(dir, "js"), serverArgs...)
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
	// The ledgers write their claims as a deployment on such a server would (see
	// consumer.LedgerWrites): one atomic batch where every write is fsynced, one by one
	// where it is not.
	writes := consumer.LedgerPipelined
	if *always {
		writes = consumer.LedgerAtomic
	}
	fmt.Fprintf(stderr, "ledger writes: %s\n", writes)
	b := &bench{js: js, url: url, n: *n, batchSize: *batchSize, fsctl: *fsctl, writes: writes, stderr: stderr}
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

	// The consumer applies the window once (its ledger was empty).
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
	var applied atomic.Int64
	t0 = time.Now()
	stopBench, err := b.pipeline(ctx, "bench", jetstream.DeliverAllPolicy, &applied)
	if err != nil {
		return err
	}
	if err := b.drained(ctx, "bench"); err != nil {
		return err
	}
	appliedRate := float64(*n) / time.Since(t0).Seconds()
	fmt.Fprintf(stderr, "pipeline, empty ledger (all applied): %.0f/s\n", appliedRate)
	pprof.StopCPUProfile()

	// An operator replays the window to it: every event comes back, and is skipped.
	before, err := js.AccountInfo(ctx)
	if err != nil {
		return err
	}
	replayRate, err := b.fsctlReplay(ctx, "bench")
	if err != nil {
		return err
	}
	after, err := js.AccountInfo(ctx)
	if err != nil {
		return err
	}
	extra := int64(after.Store) - int64(before.Store)
	fmt.Fprintf(stderr, "fsctl replay, end to end (all skipped): %.0f/s; applied again: %d (want 0); stream storage %+d bytes\n",
		replayRate, applied.Load()-int64(*n), extra)
	if applied.Load() != int64(*n) {
		return fmt.Errorf("the replay applied %d events again", applied.Load()-int64(*n))
	}
	if s, err := js.Stream(ctx, streams.Events); err == nil {
		fmt.Fprintf(stderr, "for scale: the window's events take %d bytes in EVENTS, what a copy of them would store again\n", s.CachedInfo().State.Bytes)
	}

	// The same window re-read by a fresh start of the consumer (its durable recreated):
	// the consumer's own skip rate.
	stopBench()
	if err := js.DeleteConsumer(ctx, streams.Events, "bench"); err != nil {
		return err
	}
	t0 = time.Now()
	stopBench, err = b.pipeline(ctx, "bench", jetstream.DeliverAllPolicy, &applied)
	if err != nil {
		return err
	}
	defer stopBench()
	if err := b.drained(ctx, "bench"); err != nil {
		return err
	}
	skipped := float64(*n) / time.Since(t0).Seconds()
	fmt.Fprintf(stderr, "the consumer restarted from the window's start (all skipped): %.0f/s\n", skipped)

	// A consumer that never saw the window (it started at the end of the stream) is given
	// it by a replay: every event applied.
	var fresh atomic.Int64
	stopFresh, err := b.pipeline(ctx, "fresh", jetstream.DeliverNewPolicy, &fresh)
	if err != nil {
		return err
	}
	defer stopFresh()
	replayApplied, err := b.fsctlReplay(ctx, "fresh")
	if err != nil {
		return err
	}
	if fresh.Load() != int64(*n) {
		return fmt.Errorf("the replay to a consumer that never saw the window applied %d of %d events", fresh.Load(), *n)
	}
	fmt.Fprintf(stderr, "fsctl replay, end to end (all applied): %.0f/s\n", replayApplied)

	fmt.Fprintf(stdout, "replay skipped_per_s=%.0f applied_per_s=%.0f raw_consume_per_s=%.0f fsctl_replay_per_s=%.0f fsctl_replay_applied_per_s=%.0f extra_stored_bytes=%d\n",
		skipped, appliedRate, raw, replayRate, replayApplied, extra)
	return nil
}

// pipeline runs consumer name over events.bench.> with a sink that only counts, until the
// returned function is called.
func (b *bench) pipeline(ctx context.Context, name string, deliver jetstream.DeliverPolicy, count *atomic.Int64) (func(), error) {
	noop := func(context.Context, *consumer.Message) error { count.Add(1); return nil }
	p, err := consumer.NewPipeline(ctx, b.js, consumer.Config{Name: name, FilterSubjects: []string{"events.bench.>"}, DeliverPolicy: deliver,
		BatchSize: b.batchSize, MaxAckPending: 4 * b.batchSize, LedgerWrites: b.writes}, consumer.PerMessage(noop), consumer.PipelineOptions{})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(rctx) }()
	return func() { cancel(); <-done }, nil
}

// fsctlReplay runs `fsctl replay --consumer name --from-seq 1` as its own process and
// returns the events of the window per second it took, start to exit.
func (b *bench) fsctlReplay(ctx context.Context, name string) (float64, error) {
	cmd := exec.CommandContext(ctx, b.fsctl, "--server", b.url, "--json", "replay", "--consumer", name, "--from-seq", "1")
	cmd.Stderr = b.stderr
	t0 := time.Now()
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("fsctl replay (run make build first): %w: %s", err, out)
	}
	elapsed := time.Since(t0)
	fmt.Fprintf(b.stderr, "fsctl replay --consumer %s: %s in %s\n", name, out, elapsed.Round(time.Millisecond))
	return float64(b.n) / elapsed.Seconds(), nil
}

// publish stores n asset events, each about its own asset, in atomic batches of 1,000 (on
// a server that fsyncs every write, publishing them one by one would take minutes).
func publish(ctx context.Context, js jetstream.JetStream, n int) error {
	now := time.Now()
	batch := make([]*nats.Msg, 0, 1000)
	for i := range n {
		id := strconv.FormatInt(2274033731790001+int64(i)*16, 10)
		evID := "bench:" + strconv.Itoa(i)
		ce := event.New(event.SourceServiceTrade, "bench", "asset", id, "updated", evID, now, now,
			[]byte(`{"action":"updated","entity":{"type":"asset","id":`+id+`},"changeset":[{"field":"status","oldValue":"active","newValue":"inactive"}]}`))
		batch = append(batch, &nats.Msg{Subject: "events.bench.asset." + id + ".updated", Data: ce.AppendJSON(nil), Header: nats.Header{jetstream.MsgIDHeader: []string{evID}}})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := jetstreamext.PublishMsgBatch(ctx, js, batch, jetstreamext.BatchFlowControl{}); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// rawConsume fetches and acks every event with nats.go alone.
func rawConsume(ctx context.Context, js jetstream.JetStream, n int) (float64, error) {
	c, err := js.CreateConsumer(ctx, streams.Events, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 5000})
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

// drained waits until consumer name has acknowledged the whole window and has nothing
// pending.
func (b *bench) drained(ctx context.Context, name string) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		c, err := b.js.Consumer(ctx, streams.Events, name)
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= uint64(b.n) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumer %s did not drain within 10 minutes", name)
		}
		time.Sleep(20 * time.Millisecond) // polling the consumer's progress
	}
}
