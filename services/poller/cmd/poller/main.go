// Command poller is fieldstream's polling backstop for one tenant: it walks the tenant's
// ServiceTrade account for entities changed since its checkpoints and publishes them to
// EVENTS, so that consumers catch up on webhooks ServiceTrade discarded.
//
//	poller -tenant demo                 poll now and every -interval; answer poll requests
//	poller -tenant demo -once           poll once, print the result as JSON, exit (1 on failure)
//	poller -tenant demo -once -since 6h re-poll the last six hours once (after an outage)
//
// While it runs it answers NATS requests on fieldstream.poller.<tenant>.run (payload
// optional: {"since":"2h"}) with the poll's result. See -h for every setting.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/poller"
	"github.com/fieldstream/fieldstream/streams"
)

func main() { daemon.Main(program()) }

func program() daemon.Program {
	fs := flag.NewFlagSet("poller", flag.ContinueOnError)
	var (
		cfg      poller.Config
		st       servicetrade.Config
		interval = fs.Duration("interval", 5*time.Minute, "time between scheduled polls")
		once     = fs.Bool("once", false, "poll once, print the result as JSON and exit (non-zero if the poll failed)")
		since    = fs.String("since", "", "the first poll re-reads from this long ago (6h) or this RFC 3339 time instead of from the checkpoints")
		kinds    = fs.String("kinds", strings.Join(poller.DefaultKinds(), ","), "ServiceTrade resources to poll, comma-separated: job, asset, location, clock")
		opsAddr  = fs.String("metrics-addr", "", "if set, serve /metrics, /healthz and /readyz (NATS connected, EVENTS answering) on this address (not with -once)")
		start    time.Time
	)
	cfg.RegisterFlags(fs)
	st.RegisterFlags(fs, "http://127.0.0.1:9101/api")
	return daemon.Program{Name: "poller", Flags: fs,
		Validate: func() (err error) { // the likeliest mistakes, before connecting anywhere; poller.New checks the rest
			cfg.Kinds = strings.Split(strings.ReplaceAll(*kinds, " ", ""), ",")
			switch start, err = poller.ParseSince(*since, time.Now()); {
			case !event.ValidToken(cfg.Tenant):
				return fmt.Errorf("-tenant %q: required; letters, digits, '-' and '_'", cfg.Tenant)
			case *interval <= 0:
				return fmt.Errorf("-interval %s: must be positive", *interval)
			case err != nil:
				return fmt.Errorf("-since: %w", err)
			}
			if err := st.Validate(); err != nil {
				return fmt.Errorf("servicetrade: %w (set FS_SERVICETRADE_CLIENT_SECRET)", err)
			}
			return nil
		},
		Wire: func(setup context.Context, p *daemon.Process) error {
			st.Logger, cfg.Logger, cfg.JetStream = p.Log, p.Log, p.JetStream
			var err error
			if st.OnGrant, err = servicetrade.GrantCounter(p.Metrics); err != nil {
				return err
			}
			src, err := servicetrade.NewShared(setup, p.JetStream, st)
			if err != nil {
				return err
			}
			cfg.Source = src
			pl, err := poller.New(setup, cfg)
			if err != nil {
				return err
			}
			if *once {
				p.Go(func(ctx context.Context) error {
					res, err := pl.PollOnce(ctx, start)
					if eerr := json.NewEncoder(p.Stdout).Encode(res); eerr != nil && err == nil {
						err = eerr
					}
					return err
				})
				return nil
			}
			if *opsAddr != "" {
				p.ReadyWhen(p.StreamAnswers(streams.Events))
				if _, err := p.ServeOps(*opsAddr); err != nil {
					return err
				}
			}
			p.Log.Info().Dur("interval", *interval).Str("requests", poller.RunSubject(cfg.Tenant)).Strs("kinds", cfg.Kinds).Msg("poller running")
			p.Go(func(ctx context.Context) error { return pl.RunFrom(ctx, start, *interval) })
			p.Go(pl.Serve)
			return nil
		}}
}
