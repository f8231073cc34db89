// Command fieldstream runs the whole pipeline in one process: an embedded NATS server with
// JetStream (unless -nats-url or NATS_URL names a server), the stream definitions, the
// webhook gateway with the dashboard, the simulated outside world, the three consumer
// services, the polling backstop, and a simulated ServiceTrade account sending webhooks. It
// is what `make run` starts. See -h for every setting.
package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/pkg/natsembed"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/fieldstream/stack"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// demo is the tenant `make run` serves; the README documents its values.
var demo = stack.Tenant{Name: "demo", KeepExisting: true,
	Record: tenant.Config{ServiceTradeToken: "dev-token", StandardSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}

func main() {
	fs := flag.NewFlagSet("fieldstream", flag.ContinueOnError)
	o := stack.Options{Tenant: demo, Dashboard: true}
	o.Gateway.RegisterFlags(fs)
	o.SimAddrs.RegisterFlags(fs, "sim-")
	o.Consumer.RegisterFlags(fs)
	fs.Float64Var(&o.SendRate, "sim-rate", 3, "events per second the simulated ServiceTrade account sends (0 turns it off)")
	fs.IntVar(&o.SendMaxBatch, "sim-max-batch", servicetrade.DefaultMaxBatch, "most items in one simulated delivery")
	fs.DurationVar(&o.Simulators.TokenLifetime, "sim-token-lifetime", time.Hour, "lifetime of the simulated ServiceTrade API's OAuth2 tokens")
	fs.DurationVar(&o.PollEvery, "poll-interval", 5*time.Minute, "how often the polling backstop walks the ServiceTrade API for tenant demo (0: never)")
	fs.BoolVar(&o.Tenant.Create, "demo-tenant", true, "create tenant demo (token dev-token, the Standard Webhooks spec secret) if it does not exist")
	withConsumers := fs.Bool("consumers", true, "run the assets, workorders and payroll consumers in this process (false: run them as their own binaries)")

	daemon.Main(daemon.Program{Name: "fieldstream", Flags: fs, Embed: natsembed.Embed("fieldstream"), ConsoleLog: true,
		Validate: func() error {
			if o.SendRate < 0 {
				return fmt.Errorf("-sim-rate %v: must not be negative", o.SendRate)
			}
			return nil
		},
		Wire: func(setup context.Context, p *daemon.Process) error {
			if p.Embedded != nil && !p.Embedded.SyncAlways && !given(fs, "commit-max-events") {
				// A server that does not fsync before every ack stores events published one
				// by one faster than as atomic batches: group commit only pays for fsyncs.
				o.Gateway.Config.CommitMaxEvents = 1
			}
			if p.Embedded != nil && !p.Embedded.SyncAlways && !given(fs, "ledger-writes") {
				o.Consumer.LedgerWrites = consumer.LedgerPipelined // the same holds for the ledgers' claims
			}
			if *withConsumers {
				o.Consumers = stack.Consumers
			}
			s, err := stack.Assemble(setup, p, o)
			if err != nil {
				return err
			}
			printBanner(p.Stdout, p, s, o)
			return nil
		}})
}

// given reports whether flag name was set on the command line or by the environment.
func given(fs *flag.FlagSet, name string) (set bool) {
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
