// Command e2e measures the whole pipeline, from a webhook's 2xx to the event applied at the
// simulated downstream system, and each consumer's sustained maximum, and prints one line:
//
//	e2e rate_per_s=… p50_ms=… p99_ms=… max_assets_per_s=… max_workorders_per_s=… max_payroll_per_s=…
//
// followed by the asset registry's grouping under a burst:
//
//	e2e_grouping asset_events=… registry_calls=… factor=…
//
// nats-server runs as its own process (file store); the gateway, the simulators and the
// consumers run in this process, on loopback, with the simulated systems at zero latency.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/services/gateway"
	"github.com/fieldstream/fieldstream/services/simulator"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/test/harness"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench e2e:", err)
		os.Exit(1)
	}
}

type config struct {
	natsServerBin string
	rate          float64
	duration      time.Duration
	burst         int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.natsServerBin, "nats-server-bin", "bin/nats-server", "nats-server binary to run")
	fs.Float64Var(&c.rate, "rate", 1000, "webhook events per second in the latency run")
	fs.DurationVar(&c.duration, "duration", 15*time.Second, "length of the latency run")
	fs.IntVar(&c.burst, "burst", 3000, "deliveries (5 changes each) published before the maximum-rate runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rate, p50, p99, err := latencyRun(ctx, c, stderr)
	if err != nil {
		return err
	}
	maxRates, grouping, err := maxRun(ctx, c, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "e2e rate_per_s=%.0f p50_ms=%.1f p99_ms=%.1f max_assets_per_s=%.0f max_workorders_per_s=%.0f max_payroll_per_s=%.0f\n",
		rate, p50, p99, maxRates["assets"], maxRates["workorders"], maxRates["payroll"])
	fmt.Fprintf(stdout, "e2e_grouping asset_events=%d registry_calls=%d factor=%.1f\n", grouping[0], grouping[1], float64(grouping[0])/float64(max(1, grouping[1])))
	return nil
}

// env starts nats-server and the harness on a fresh store.
func env(ctx context.Context, c config) (*harness.Env, func(), error) {
	dir, err := os.MkdirTemp("", "fieldstream-e2e-")
	if err != nil {
		return nil, nil, err
	}
	url, stopNATS, err := harness.StartNATSProcess(ctx, c.natsServerBin, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	nc, err := nats.Connect(url)
	if err != nil {
		stopNATS()
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	// The server keeps nats-server's default sync_interval, as make run does, so the gateway
	// publishes events one by one as there (see gateway.Config.CommitMaxEvents).
	e, err := harness.New(ctx, js, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 1}},
		func(c *gateway.Config) { c.CommitMaxEvents = 1 })
	if err != nil {
		return nil, nil, err
	}
	return e, func() { e.Close(); nc.Close(); stopNATS(); os.RemoveAll(dir) }, nil
}

// latencyRun sends webhooks at c.rate for c.duration with every consumer running and
// returns the events stored per second and the 50th and 99th percentile of the time from
// the gateway receiving an event to its consumer having applied it downstream.
func latencyRun(ctx context.Context, c config, stderr io.Writer) (rate, p50, p99 float64, err error) {
	e, stop, err := env(ctx, c)
	if err != nil {
		return 0, 0, 0, err
	}
	defer stop()
	var mu sync.Mutex
	var lat []time.Duration
	timer := func(next consumer.BatchHandler) consumer.BatchHandler {
		return func(ctx context.Context, batch []*consumer.Message) []error {
			errs := next(ctx, batch)
			now := time.Now()
			mu.Lock()
			for i, err := range errs {
				if err == nil {
					lat = append(lat, now.Sub(batch[i].Event.ReceivedTime))
				}
			}
			mu.Unlock()
			return errs
		}
	}
	for _, name := range harness.Consumers {
		if err := e.StartConsumer(ctx, name, consumer.Config{}, consumer.PipelineOptions{}, timer); err != nil {
			return 0, 0, 0, err
		}
	}
	sender, err := stsim.NewSender(stsim.SenderConfig{URL: e.Hook, EventsPerSecond: c.rate, Concurrency: 16}, e.Stack.Account)
	if err != nil {
		return 0, 0, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	if err := sender.Run(rctx); err != nil {
		return 0, 0, 0, err
	}
	st := sender.Stats()
	if err := waitSettled(ctx, e, harness.Consumers...); err != nil {
		return 0, 0, 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	if len(lat) == 0 {
		return 0, 0, 0, errors.New("no event was applied")
	}
	q := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	fmt.Fprintf(stderr, "latency run: %d events delivered (%d discarded), %d applications timed, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		st.EventsDelivered, st.EventsDiscarded, len(lat), q(0.5), q(0.99), q(1))
	return float64(st.EventsDelivered) / c.duration.Seconds(), q(0.5), q(0.99), nil
}

// maxRun publishes a burst, then lets each consumer drain it alone and returns events per
// second by consumer, and the asset events and registry calls of the assets drain.
func maxRun(ctx context.Context, c config, stderr io.Writer) (map[string]float64, [2]int, error) {
	e, stop, err := env(ctx, c)
	if err != nil {
		return nil, [2]int{}, err
	}
	defer stop()
	start := time.Now()
	if err := e.Send(ctx, c.burst, 5); err != nil {
		return nil, [2]int{}, err
	}
	fmt.Fprintf(stderr, "burst: %d deliveries published in %s\n", c.burst, time.Since(start).Round(time.Millisecond))
	rates := map[string]float64{}
	var grouping [2]int
	for _, name := range harness.Consumers {
		cc := consumer.Config{BatchSize: 500, MaxAckPending: 5000}
		if err := e.StartConsumer(ctx, name, cc, consumer.PipelineOptions{}, nil); err != nil {
			return nil, grouping, err
		}
		t0 := time.Now()
		total, err := e.Pending(ctx, name)
		if err != nil {
			return nil, grouping, err
		}
		if err := waitSettled(ctx, e, name); err != nil {
			return nil, grouping, err
		}
		took := time.Since(t0)
		rates[name] = float64(total) / took.Seconds()
		fmt.Fprintf(stderr, "max %s: %d events in %s = %.0f/s\n", name, total, took.Round(time.Millisecond), rates[name])
		if name == "assets" {
			grouping = [2]int{int(total), e.Stack.Registry.Calls()}
		}
	}
	return rates, grouping, nil
}

func waitSettled(ctx context.Context, e *harness.Env, names ...string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for !e.Settled(ctx, names...) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%v did not settle within 5 minutes", names)
		}
		time.Sleep(20 * time.Millisecond) // polling for the consumers to drain
	}
	return nil
}
