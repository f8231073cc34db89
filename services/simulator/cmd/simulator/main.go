// Command simulator serves fieldstream's simulated outside world as a process of its own —
// the ServiceTrade API, the asset registry, the work-order system and Paycom payroll, each
// on its address with its fault injector under /admin/ — and, on request, sends the
// simulated account's changes to a hook URL as ServiceTrade webhooks (see simulator.Feed,
// served beside the ServiceTrade API) and, with -standard-url, as Standard Webhooks too —
// spread over several gateways when given several URLs. The chaos campaigns and
// deploy/compose run it; see -h for every setting.
package main

import (
	"context"
	"flag"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/pkg/probe"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

func main() {
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	var addrs simulator.Addrs
	addrs.RegisterFlags(fs, "")
	var sc simulator.StackConfig
	fs.Int64Var(&sc.Account.Seed, "account-seed", 1, "seed of the simulated account's entities and changes")
	fs.DurationVar(&sc.TokenLifetime, "token-lifetime", time.Hour, "lifetime of the ServiceTrade API's OAuth2 tokens")
	fs.BoolVar(&sc.PaycomImportIdentical, "paycom-import-identical", false, "payroll imports a punch identical to an imported one again (no safeguard against doubles)")
	var feed servicetrade.SenderConfig
	hookURLs := fs.String("hook-url", "http://127.0.0.1:8080/hooks/demo/servicetrade/dev-token", "where the feed POSTs ServiceTrade webhooks; several, comma-separated, take the attempts in turn (a load balancer in front of several gateways)")
	fs.Float64Var(&feed.EventsPerSecond, "rate", 10, "events per second the feed sends once started")
	fs.IntVar(&feed.MaxBatch, "max-batch", servicetrade.DefaultMaxBatch, "most items in one delivery")
	fs.IntVar(&feed.Concurrency, "concurrency", 4, "deliveries in flight at once")
	fs.Int64Var(&feed.Seed, "feed-seed", 1, "seed of the feed's batch sizes, duplicates and reordering")
	var std simulator.StandardSenderConfig
	standardURLs := fs.String("standard-url", "", "if set, the feed also sends changes as Standard Webhooks to this hook URL (one change a delivery); several, comma-separated, take the attempts in turn")
	fs.StringVar(&std.Secret, "standard-secret", "", "the Standard Webhooks signing secret (whsec_…) of -standard-url")
	fs.Float64Var(&std.EventsPerSecond, "standard-rate", 5, "Standard Webhooks deliveries per second, beside -rate")
	fs.StringVar(&std.HeaderFamily, "standard-headers", "both", "header names of the Standard Webhooks deliveries: webhook, svix, or both (alternating)")
	start := fs.Bool("feed-start", false, "start the feed by itself (otherwise: POST "+simulator.FeedPrefix+"start), once every -feed-wait URL answers")
	wait := fs.String("feed-wait", "", "with -feed-start: health endpoints (comma-separated, the gateways' /readyz) that must answer 2xx before the feed starts")

	daemon.Main(daemon.Program{Name: "simulator", Flags: fs, EnvPrefix: "FS_SIM", WithoutNATS: true,
		Wire: func(_ context.Context, p *daemon.Process) error {
			stack, err := simulator.NewStack(sc)
			if err != nil {
				return err
			}
			if urls := splitURLs(*hookURLs); len(urls) > 0 {
				feed.URL, feed.MoreURLs = urls[0], urls[1:]
			}
			var withStandard *simulator.StandardSenderConfig
			if urls := splitURLs(*standardURLs); len(urls) > 0 {
				std.URL, std.MoreURLs = urls[0], urls[1:]
				withStandard = &std
			}
			f, err := simulator.NewFeed(stack, feed, withStandard)
			if err != nil {
				return err
			}
			servers, err := stack.Listen(addrs, f)
			if err != nil {
				return err
			}
			p.Go(servers.Serve)
			p.Defer(f.Stop)
			if *start {
				p.Go(func(ctx context.Context) error { return startWhenReady(ctx, f, splitURLs(*wait), p.Log) })
			}
			return nil
		}})
}

// startWhenReady starts f once every one of urls answers 2xx (polled every second), then
// waits for ctx to end.
func startWhenReady(ctx context.Context, f *simulator.Feed, urls []string, log zerolog.Logger) error {
	for _, u := range urls {
		for probe.Check(ctx, u) != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
	if err := f.Start(); err != nil {
		return err
	}
	log.Info().Strs("after", urls).Msg("feed started")
	<-ctx.Done()
	return nil
}

// splitURLs splits a comma-separated list, dropping blanks.
func splitURLs(list string) []string {
	var out []string
	for _, u := range strings.Split(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}
