// Command bench-cluster measures fieldstream on its images (make images) on a three-node
// JetStream cluster (R3, sync always, TLS, nkey users) and prints one line:
//
//	cluster ingest_1gw_per_s=… ingest_2gw_per_s=… apply_r1_per_s=… apply_r2_per_s=… apply_r4_per_s=… order_violations=… doubled=…
//
//   - ingest_1gw_per_s, ingest_2gw_per_s: events per second acknowledged (2xx) by one
//     gateway, then by two at once, each gateway driven by -senders closed-loop senders of
//     signed webhooks (half Standard Webhooks, half ServiceTrade deliveries of 5 events) for
//     -duration. The gateways and the three nodes share the machine's cores.
//   - apply_r1/r2/r4_per_s: the same backlog of -backlog work-order events (updates of the
//     simulated account's ~250 jobs, round after round, posted through a gateway) drained by
//     1, 2 and 4 replicas of workorders, the work-order system answering each call after
//     20 ms; from the first delivery to nothing pending. Each run starts from a new durable
//     and an empty ledger; how many calls reached the system is printed beside.
//   - order_violations, doubled: over the three drains, writes of an older job over a newer
//     one, and events the work-order system received again after applying them (it answers
//     those as duplicates), as the system records them. The jobs do not change during the
//     drains, so every fetch of a job reads the same version: order violations cannot show
//     here (the fault campaigns look for them), doubles can.
//
// `make bench-cluster` runs it after `make images`.
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
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/fault"
	"github.com/fieldstream/fieldstream/services/simulator/workordersys"
	"github.com/fieldstream/fieldstream/test/chaos"
	"github.com/fieldstream/fieldstream/test/cluster"
	"github.com/fieldstream/fieldstream/test/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench-cluster:", err)
		os.Exit(1)
	}
}

type settings struct {
	tag      string
	dir      string
	senders  int
	duration time.Duration
	backlog  int
	latency  time.Duration
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // Ryuk's image cannot be pulled; Close cleans up
	}
	fs := flag.NewFlagSet("bench-cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	fs.StringVar(&s.tag, "tag", "latest", "tag of the fieldstream/<binary> images")
	fs.StringVar(&s.dir, "dir", "", "working directory: secrets, logs/ (default: a new one under the system's temp dir)")
	fs.IntVar(&s.senders, "senders", 64, "closed-loop webhook senders per gateway")
	fs.DurationVar(&s.duration, "duration", 15*time.Second, "how long each ingest measurement runs")
	fs.IntVar(&s.backlog, "backlog", 2400, "work-order events each apply run drains")
	fs.DurationVar(&s.latency, "sink-latency", 20*time.Millisecond, "latency of every call to the work-order system")
	if err := envflag.Parse(fs, args, "FS_BENCH", nil, getenv); err != nil {
		return err
	}
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "fieldstream-bench-cluster-")
		if err != nil {
			return err
		}
		s.dir = dir
	}
	progress := func(line string) { fmt.Fprintf(stderr, "%s %s\n", time.Now().Format(time.TimeOnly), line) }
	// The feed runs only to grow the simulated account (see growAccount), fast.
	c, err := cluster.Start(ctx, cluster.Config{Tag: s.tag, Dir: s.dir, Gateways: 2, Consumers: []string{}, NoPoller: true, Rate: 1000, Progress: progress})
	if err != nil {
		return err
	}
	defer c.Close()

	one, err := ingest(ctx, s, c.GatewayURLs[:1])
	if err != nil {
		return err
	}
	progress(fmt.Sprintf("ingest through 1 gateway: %.0f events/s", one))
	two, err := ingest(ctx, s, c.GatewayURLs)
	if err != nil {
		return err
	}
	progress(fmt.Sprintf("ingest through 2 gateways: %.0f events/s", two))

	jobs, err := growAccount(ctx, c, progress)
	if err != nil {
		return err
	}
	if err := chaos.HTTPJSON(ctx, http.MethodPut, c.Sims.WorkOrders+fault.AdminPrefix+"faults", fault.Faults{LatencyMS: int(s.latency.Milliseconds())}, nil); err != nil {
		return err
	}
	var rates []float64
	violations, doubled := 0, 0
	for _, n := range []int{1, 2, 4} {
		var before, after workordersys.Record
		if err := getJSON(ctx, c.Sims.WorkOrders+"/admin/applied", &before); err != nil {
			return err
		}
		rate, err := drain(ctx, s, c, jobs, n)
		if err != nil {
			return fmt.Errorf("drain with %d replicas: %w", n, err)
		}
		if err := getJSON(ctx, c.Sims.WorkOrders+"/admin/applied", &after); err != nil {
			return err
		}
		violations += len(after.Violations) - len(before.Violations)
		doubled += after.Duplicates - before.Duplicates
		progress(fmt.Sprintf("%d events drained by %d workorders replicas: %.0f events/s; %d calls reached the work-order system, %d of them repeats of an applied event, %d older over newer",
			s.backlog, n, rate, after.Calls-before.Calls, after.Duplicates-before.Duplicates, len(after.Violations)-len(before.Violations)))
		rates = append(rates, rate)
	}
	fmt.Fprintf(stdout, "cluster ingest_1gw_per_s=%.0f ingest_2gw_per_s=%.0f apply_r1_per_s=%.0f apply_r2_per_s=%.0f apply_r4_per_s=%.0f order_violations=%d doubled=%d\n",
		one, two, rates[0], rates[1], rates[2], violations, doubled)
	return nil
}

// growAccount lets the simulated account live (its feed sends its changes through the
// gateways) until it has at least 250 jobs, so that a backlog of updates holds each job
// only every few hundred events — the simulated account starts with 17, and a backlog of
// updates of so few jobs would be mostly superseded, each replica skipping the older
// versions the others applied. It returns the jobs.
func growAccount(ctx context.Context, c *cluster.Cluster, progress func(string)) ([]int64, error) {
	if err := chaos.StartFeed(ctx, c.Sims.ServiceTrade); err != nil {
		return nil, err
	}
	var snap simulator.AccountSnapshot
	deadline := time.Now().Add(2 * time.Minute)
	for len(snap.Jobs) < 250 && time.Now().Before(deadline) {
		if err := chaos.Pause(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
		if err := getJSON(ctx, c.Sims.ServiceTrade+simulator.FeedPrefix+"account", &snap); err != nil {
			return nil, err
		}
	}
	if _, err := chaos.StopFeed(ctx, c.Sims.ServiceTrade); err != nil {
		return nil, err
	}
	if len(snap.Jobs) < 250 {
		return nil, fmt.Errorf("the simulated account has %d jobs after 2 minutes, want 250", len(snap.Jobs))
	}
	progress(fmt.Sprintf("the simulated account has %d jobs", len(snap.Jobs)))
	return snap.Jobs, nil
}

// ingest drives every gateway of urls with s.senders senders for s.duration and returns
// the events per second answered 2xx, all gateways together.
func ingest(ctx context.Context, s settings, urls []string) (float64, error) {
	var loads []*harness.Load
	for _, u := range urls {
		l, err := harness.StartLoad(harness.LoadConfig{URL: u, Tenant: cluster.Tenant, Secret: cluster.TenantSecret,
			Token: cluster.TenantToken, Senders: s.senders, Batch: 5})
		if err != nil {
			return 0, err
		}
		loads = append(loads, l)
	}
	start := time.Now()
	err := chaos.Pause(ctx, s.duration)
	var events int
	for _, l := range loads {
		for _, a := range l.Stop() {
			if a.OK() {
				events += len(a.IDs)
			}
		}
	}
	return float64(events) / time.Since(start).Seconds(), err
}

// drain posts a fresh backlog of s.backlog updates of the account's jobs (EVENTS emptied
// first), then starts n workorders replicas on a new durable with an empty ledger and
// returns the events per second from the first delivery to nothing pending.
func drain(ctx context.Context, s settings, c *cluster.Cluster, jobs []int64, n int) (float64, error) {
	js := c.JetStream
	events, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		return 0, err
	}
	if err := events.Purge(ctx); err != nil {
		return 0, err
	}
	if err := js.DeleteConsumer(ctx, "EVENTS", "workorders"); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, err
	}
	if err := js.DeleteKeyValue(ctx, consumer.LedgerBucket("workorders")); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0, err
	}
	// The ledger first, as the service would create it (R3, as EVENTS): the replicas then
	// all start at once on an existing ledger, so the drain begins on all of them together.
	if _, err := consumer.OpenLedger(ctx, js, "workorders", 0, 3); err != nil {
		return 0, err
	}
	if err := postBacklog(ctx, c, jobs, s.backlog); err != nil {
		return 0, err
	}
	replicas, err := c.AddReplicas(ctx, "workorders", n)
	if err != nil {
		return 0, err
	}
	defer func() {
		var wg sync.WaitGroup
		for _, r := range replicas {
			wg.Go(func() { _ = c.RemoveReplica(context.Background(), r) })
		}
		wg.Wait()
	}()
	var first time.Time
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		cons, err := js.Consumer(ctx, "EVENTS", "workorders")
		if err == nil {
			info, err := cons.Info(ctx)
			if err == nil {
				if first.IsZero() && info.Delivered.Stream > 0 {
					first = time.Now()
				}
				if !first.IsZero() && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= uint64(s.backlog) {
					return float64(s.backlog) / time.Since(first).Seconds(), nil
				}
			}
		}
		if err := chaos.Pause(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("backlog not drained within 10 minutes")
}

// postBacklog posts n updates of jobs, round after round over all of them, through the
// first gateway as ServiceTrade deliveries of 50, each update with its own time so each is
// its own event.
func postBacklog(ctx context.Context, c *cluster.Cluster, jobs []int64, n int) error {
	base := time.Now().Unix()
	hook := c.GatewayURLs[0] + "/hooks/" + cluster.Tenant + "/servicetrade/" + cluster.TenantToken
	for i := 0; i < n; i += 50 {
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"messageId":"bench-%d-%d","timestamp":"%d","data":[`, base, i, base)
		for j := i; j < min(i+50, n); j++ {
			if j > i {
				b.WriteByte(',')
			}
			job := jobs[j%len(jobs)]
			fmt.Fprintf(&b, `{"action":"updated","timestamp":%d,"userId":1,"entity":{"type":"job","id":%d,"uri":"https://api.servicetrade.com/api/job/%d"},"changeset":[{"field":"description","oldValue":"a","newValue":"%d"}]}`,
				base+int64(j), job, job, j)
		}
		b.WriteString("]}")
		if err := post(ctx, hook, b.Bytes()); err != nil {
			return fmt.Errorf("posting the backlog: %w", err)
		}
	}
	return nil
}

// post POSTs body to hook until it is answered 200, as a sender retries a 503 (the
// gateway's answer while JetStream does not store in time), for up to a minute.
func post(ctx context.Context, hook string, body []byte) error {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Post(hook, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline):
			return fmt.Errorf("%d %s", resp.StatusCode, answer)
		}
		if err := chaos.Pause(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

func getJSON(ctx context.Context, url string, out any) error {
	return chaos.HTTPJSON(ctx, http.MethodGet, url, nil, out)
}
