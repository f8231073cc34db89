// Command simulator serves fieldstream's simulated outside world as a process of its own —
// the ServiceTrade API, the asset registry, the work-order system and Paycom payroll, each
// on its address with its fault injector under /admin/ — and, on request, sends the
// simulated account's changes to a hook URL as ServiceTrade webhooks (see simulator.Feed,
// served beside the ServiceTrade API). The chaos campaign runs it; see -h for every setting.
package main

import (
	"context"
	"flag"
	"time"

	"github.com/fieldstream/fieldstream/pkg/daemon"
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
	fs.StringVar(&feed.URL, "hook-url", "http://127.0.0.1:8080/hooks/demo/servicetrade/dev-token", "where the feed POSTs webhooks")
	fs.Float64Var(&feed.EventsPerSecond, "rate", 10, "events per second the feed sends once started")
	fs.IntVar(&feed.MaxBatch, "max-batch", servicetrade.DefaultMaxBatch, "most items in one delivery")
	fs.IntVar(&feed.Concurrency, "concurrency", 4, "deliveries in flight at once")
	fs.Int64Var(&feed.Seed, "feed-seed", 1, "seed of the feed's batch sizes, duplicates and reordering")
	var std simulator.StandardSenderConfig
	fs.StringVar(&std.URL, "standard-url", "", "if set, the feed also sends changes as Standard Webhooks to this hook URL (one change a delivery)")
	fs.StringVar(&std.Secret, "standard-secret", "", "the Standard Webhooks signing secret (whsec_…) of -standard-url")
	fs.Float64Var(&std.EventsPerSecond, "standard-rate", 5, "Standard Webhooks deliveries per second, beside -rate")
	fs.StringVar(&std.HeaderFamily, "standard-headers", "both", "header names of the Standard Webhooks deliveries: webhook, svix, or both (alternating)")

	daemon.Main(daemon.Program{Name: "simulator", Flags: fs, EnvPrefix: "FS_SIM", WithoutNATS: true,
		Wire: func(_ context.Context, p *daemon.Process) error {
			stack, err := simulator.NewStack(sc)
			if err != nil {
				return err
			}
			var withStandard *simulator.StandardSenderConfig
			if std.URL != "" {
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
			return nil
		}})
}
