// Command ingest measures the gateway against the raw JetStream publish rate it is held
// to, side by side in one run on one machine, once with nats-server's default durability
// and once with `sync_interval: always` (fsync before every acknowledgement, the
// production setting), and prints two lines:
//
//	ingest events_per_s=… raw_publish_per_s=… ratio=… p50_ms=… p99_ms=… p99_half_load_ms=… rss_mib=…
//	ingest_always events_per_s=… raw_async_per_s=… raw_atomic_per_s=… ratio=… p99_ms=… p99_half_load_ms=… rss_mib=…
//
// It runs nats-server (file store) and the gateway binary as processes of their own (so
// the gateway's RSS is its own and no garbage collector pauses another), and drives it
// over loopback with concurrent senders of ~1 KiB Standard Webhooks events, one event per
// request. The raw rates publish the same payload size with message ids into a stream
// with EVENTS' settings: raw_publish_per_s and raw_async_per_s with nats.go's async
// publish, raw_atomic_per_s with atomic batches (the gateway's group commit is held to
// that one, as with `always` every acknowledgement waits for an fsync). Raw rates are
// measured before and after the gateway run and averaged.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/streams"
	"github.com/fieldstream/fieldstream/test/harness"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench ingest:", err)
		os.Exit(1)
	}
}

type config struct {
	gatewayBin    string
	natsServerBin string
	senders       int
	sendersAlways int
	duration      time.Duration
	halfLoadFor   time.Duration
	rawFor        time.Duration
	atomicBatch   int
	payload       int
	only          string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.gatewayBin, "gateway-bin", "bin/gateway", "gateway binary to run")
	fs.StringVar(&c.natsServerBin, "nats-server-bin", "bin/nats-server", "nats-server binary to run (built from the pinned module by make build)")
	fs.IntVar(&c.senders, "senders", 64, "concurrent HTTP senders")
	fs.IntVar(&c.sendersAlways, "senders-always", 256, "concurrent HTTP senders with sync_interval: always, where every answer waits for an fsync")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of the maximum-rate run")
	fs.DurationVar(&c.halfLoadFor, "half-load-for", 10*time.Second, "length of the half-load run")
	fs.DurationVar(&c.rawFor, "raw-for", 3*time.Second, "length of each raw publish run")
	fs.IntVar(&c.atomicBatch, "atomic-batch", 500, "messages per raw atomic batch")
	fs.IntVar(&c.payload, "payload", 1024, "approximate event size in bytes")
	fs.StringVar(&c.only, "only", "", "run only this line: ingest or ingest_always")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.only != "ingest_always" {
		f, err := measure(ctx, c, false, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ingest events_per_s=%.0f raw_publish_per_s=%.0f ratio=%.2f p50_ms=%.2f p99_ms=%.2f p99_half_load_ms=%.2f rss_mib=%.1f\n",
			f.max.rate, f.rawAsync, f.max.rate/f.rawAsync, f.max.p(50), f.max.p(99), f.half.p(99), f.rss)
	}
	if c.only != "ingest" {
		c.senders = c.sendersAlways
		f, err := measure(ctx, c, true, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ingest_always events_per_s=%.0f raw_async_per_s=%.0f raw_atomic_per_s=%.0f ratio=%.2f p99_ms=%.2f p99_half_load_ms=%.2f senders=%d avg_batch=%.0f rss_mib=%.1f\n",
			f.max.rate, f.rawAsync, f.rawAtomic, f.max.rate/f.rawAtomic, f.max.p(99), f.half.p(99), c.senders, f.avgBatch, f.rss)
	}
	return nil
}

// figures are one durability setting's measurements.
type figures struct {
	max, half           result
	rawAsync, rawAtomic float64 // messages per second, before and after averaged
	rss                 float64 // the gateway's peak, MiB
	avgBatch            float64 // events per group commit at the maximum rate
}

// measure runs a fresh nats-server (fsyncing before every ack if always) and a gateway on
// it, and measures raw publishes, the gateway at its maximum rate, and at half of it.
func measure(ctx context.Context, c config, always bool, stderr io.Writer) (figures, error) {
	var f figures
	setting := "default"
	if always {
		setting = "always"
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "["+setting+"] "+format+"\n", a...) }
	dir, err := os.MkdirTemp("", "fieldstream-bench-")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(dir)
	var args []string
	if always {
		conf := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(conf, []byte("jetstream { sync_interval: always }\n"), 0o600); err != nil {
			return f, err
		}
		args = []string{"-c", conf}
	}
	natsURL, stopNATS, err := harness.StartNATSProcess(ctx, c.natsServerBin, filepath.Join(dir, "js"), args...)
	if err != nil {
		return f, err
	}
	defer stopNATS()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return f, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return f, err
	}
	if _, err := streams.Apply(ctx, js, streams.Options{}); err != nil {
		return f, err
	}
	raw, err := streams.Definition(streams.Events)
	if err != nil {
		return f, err
	}
	raw.Name, raw.Subjects = "RAW", []string{"raw.>"}
	if _, err := streams.ApplyConfigs(ctx, js, []jetstream.StreamConfig{raw}); err != nil {
		return f, err
	}
	kv, err := tenant.OpenBucket(ctx, js)
	if err != nil {
		return f, err
	}
	if err := tenant.Put(ctx, kv, "bench", tenant.Config{StandardSecrets: []string{secret}, RatePerSecond: 1e9, Burst: 1 << 30}); err != nil {
		return f, err
	}

	rawRuns := func(when string) (async, atomic float64, err error) {
		if async, err = rawPublish(ctx, js, c.rawFor, c.payload, "async-"+when); err != nil {
			return 0, 0, err
		}
		logf("raw async publish (%s): %.0f msgs/s", when, async)
		if !always {
			return async, 0, nil
		}
		if atomic, err = rawAtomicPublish(ctx, js, c.rawFor, c.payload, c.atomicBatch, "atomic-"+when); err != nil {
			return 0, 0, err
		}
		logf("raw atomic batches of %d (%s): %.0f msgs/s", c.atomicBatch, when, atomic)
		return async, atomic, nil
	}
	async1, atomic1, err := rawRuns("before")
	if err != nil {
		return f, err
	}

	// The gateway as each setting should run it: group commit only where every ack waits
	// for an fsync (see gateway.Config.CommitMaxEvents).
	commitMax := "1"
	if always {
		commitMax = "500"
	}
	gw, err := harness.StartGateway(ctx, c.gatewayBin, natsURL, filepath.Join(dir, "gateway.log"),
		"-log-level", "warn", "-commit-max-events", commitMax)
	if err != nil {
		return f, err
	}
	defer gw.Stop()
	sec, _ := webhook.ParseSecret(secret)
	ld := &loader{addr: strings.TrimPrefix(gw.URL, "http://"), path: "/hooks/bench/standard", secret: sec, payload: c.payload}
	// Warm up connections and the gateway's cache-cold paths.
	if _, err := ld.closedLoop(ctx, c.senders, time.Second); err != nil {
		return f, err
	}
	if f.max, err = ld.closedLoop(ctx, c.senders, c.duration); err != nil {
		return f, err
	}
	logf("gateway max: %d events in %s = %.0f/s, p50 %.2f ms, p99 %.2f ms", f.max.n, c.duration, f.max.rate, f.max.p(50), f.max.p(99))
	if batches, events, err := commits(gw.URL); err == nil && batches > 0 {
		f.avgBatch = events / batches
		logf("gateway group commits so far: %.0f batches, %.1f events each", batches, f.avgBatch)
	}
	if f.half, err = ld.openLoop(ctx, f.max.rate/2, c.halfLoadFor, c.senders*4); err != nil {
		return f, err
	}
	logf("gateway at half load (%.0f/s): %d events, p50 %.2f ms, p99 %.2f ms", f.max.rate/2, f.half.n, f.half.p(50), f.half.p(99))
	if f.rss, err = peakRSSMiB(gw.Pid()); err != nil {
		return f, err
	}
	async2, atomic2, err := rawRuns("after")
	if err != nil {
		return f, err
	}
	f.rawAsync, f.rawAtomic = (async1+async2)/2, (atomic1+atomic2)/2
	return f, nil
}

// rawPublish publishes messages of size bytes with unique message ids asynchronously for
// d and returns messages per second from the first publish to the last acknowledgement.
func rawPublish(ctx context.Context, js jetstream.JetStream, d time.Duration, size int, run string) (float64, error) {
	data := bytes.Repeat([]byte("x"), size)
	start := time.Now()
	n := 0
	for ; time.Since(start) < d; n++ {
		msg := &nats.Msg{Subject: "raw.bench." + strconv.Itoa(n%1000), Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{run + strconv.Itoa(n)}}}
		if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
			return 0, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		return 0, errors.New("raw publish: acks did not arrive within 2 minutes")
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// rawAtomicPublish commits atomic batches of batch messages, one after another, for d and
// returns messages per second.
func rawAtomicPublish(ctx context.Context, js jetstream.JetStream, d time.Duration, size, batch int, run string) (float64, error) {
	data := bytes.Repeat([]byte("x"), size)
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		msgs := make([]*nats.Msg, batch)
		for i := range msgs {
			msgs[i] = &nats.Msg{Subject: "raw.bench." + strconv.Itoa(n%1000), Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{run + strconv.Itoa(n)}}}
			n++
		}
		if _, err := jetstreamext.PublishMsgBatch(ctx, js, msgs); err != nil {
			return 0, fmt.Errorf("raw atomic batch: %w", err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// commits reads the group-commit histogram of the gateway at url: batches committed and
// their events.
func commits(url string) (batches, events float64, err error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		switch name {
		case "fieldstream_gateway_commit_batch_events_count":
			batches, err = strconv.ParseFloat(value, 64)
		case "fieldstream_gateway_commit_batch_events_sum":
			events, err = strconv.ParseFloat(value, 64)
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return batches, events, nil
}

// peakRSSMiB reads the process's peak resident set (VmHWM).
func peakRSSMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

type loader struct {
	addr, path string
	secret     webhook.Secret
	payload    int
	seq        atomic.Int64
}

func (l *loader) newSender() *sender {
	return &sender{addr: l.addr, path: l.path, secret: l.secret, payload: l.payload, seq: &l.seq}
}

func send(s *sender) error {
	status, err := s.post()
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("gateway answered %d", status)
	}
	return nil
}

type result struct {
	n         int
	rate      float64
	latencies []time.Duration
}

func (r result) p(q float64) float64 {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies)-1) * q / 100)
	return float64(r.latencies[i].Microseconds()) / 1000
}

func collect(lat [][]time.Duration, took time.Duration) result {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	return result{n: len(all), rate: float64(len(all)) / took.Seconds(), latencies: all}
}

// closedLoop runs senders that each send as fast as answers come back.
func (l *loader) closedLoop(ctx context.Context, senders int, d time.Duration) (result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lat := make([][]time.Duration, senders)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	start := time.Now()
	end := start.Add(d)
	for w := range senders {
		wg.Add(1)
		snd := l.newSender()
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				t0 := time.Now()
				if err := send(snd); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					cancel()
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return result{}, *p
	}
	return collect(lat, time.Since(start)), nil
}

// openLoop sends at a fixed rate regardless of answers; latency counts from each send's
// scheduled time, so a stalled gateway shows as latency, not as a lower offered rate.
func (l *loader) openLoop(ctx context.Context, rate float64, d time.Duration, workers int) (result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	jobs := make(chan time.Time, total)
	lat := make([][]time.Duration, workers)
	lag := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for w := range workers {
		wg.Add(1)
		snd := l.newSender()
		go func() {
			defer wg.Done()
			for due := range jobs {
				lag[w] = append(lag[w], time.Since(due))
				if err := send(snd); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					cancel()
					return
				}
				lat[w] = append(lat[w], time.Since(due))
			}
		}()
	}
	start := time.Now()
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait) // pacing the offered load, not waiting for work
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- due
	}
	close(jobs)
	wg.Wait()
	lg := collect(lag, time.Since(start))
	fmt.Fprintf(os.Stderr, "open loop: start lag p50 %.2f ms p99 %.2f ms max %.2f ms\n", lg.p(50), lg.p(99), lg.p(100))
	if p := firstErr.Load(); p != nil {
		return result{}, *p
	}
	return collect(lat, time.Since(start)), nil
}
