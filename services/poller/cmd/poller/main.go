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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/run"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/natsconn"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/poller"
)

func main() {
	err := runMain(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "poller:", err)
		os.Exit(1)
	}
}

func runMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("poller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		tenant   = fs.String("tenant", "", "the fieldstream tenant whose ServiceTrade account is polled (required)")
		interval = fs.Duration("interval", 5*time.Minute, "time between scheduled polls")
		once     = fs.Bool("once", false, "poll once, print the result as JSON and exit (non-zero if the poll failed)")
		since    = fs.String("since", "", "the first poll re-reads from this long ago (6h) or this RFC 3339 time instead of from the checkpoints")
		kinds    = fs.String("kinds", strings.Join(poller.DefaultKinds(), ","), "ServiceTrade resources to poll, comma-separated: job, asset, location, clock")
		logLevel = fs.String("log-level", "info", "log level: debug, info, warn, error")
		cfg      poller.Config
		st       servicetrade.Config
		nopt     natsconn.Options
	)
	nopt.RegisterFlags(fs, "nats://127.0.0.1:4222")
	fs.DurationVar(&cfg.Overlap, "overlap", poller.DefaultOverlap, "each walk starts this long before its checkpoint (ServiceTrade's timestamps are whole seconds)")
	fs.DurationVar(&cfg.InitialLookback, "initial-lookback", poller.DefaultInitialLookback, "a kind with no checkpoint yet is polled from this long ago")
	fs.IntVar(&cfg.PageSize, "page-size", poller.DefaultPageSize, "entities per list request (at most the API's cap)")
	fs.DurationVar(&cfg.Retry.Budget, "retry-budget", poller.DefaultRetryBudget, "a walk retrying transient errors without progress for this long gives up until the next poll")
	st.RegisterFlags(fs, "http://127.0.0.1:9101/api")
	if err := envflag.Parse(fs, args, "FS", natsconn.EnvFallbacks, getenv); err != nil {
		return err
	}
	level, err := zerolog.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	if *interval <= 0 {
		return fmt.Errorf("-interval %s: must be positive", *interval)
	}
	start, err := poller.ParseSince(*since, time.Now())
	if err != nil {
		return fmt.Errorf("-since: %w", err)
	}
	cfg.Kinds = strings.Split(strings.ReplaceAll(*kinds, " ", ""), ",")
	cfg.Tenant = *tenant
	log := zerolog.New(stderr).Level(level).With().Timestamp().Str("service", "poller").Logger()
	cfg.Logger = log
	// Catch the likeliest mistakes before connecting anywhere; poller.New checks the rest.
	if !event.ValidToken(*tenant) {
		return fmt.Errorf("-tenant %q: required; letters, digits, '-' and '_'", *tenant)
	}
	if err := st.Validate(); err != nil {
		return fmt.Errorf("servicetrade: %w (set FS_SERVICETRADE_CLIENT_SECRET)", err)
	}

	nc, err := natsconn.Connect(nopt, "fieldstream-poller-"+*tenant, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st.Logger = log
	src, err := servicetrade.NewShared(setup, js, st)
	if err != nil {
		return err
	}
	cfg.JetStream, cfg.Source = js, src
	p, err := poller.New(setup, cfg)
	if err != nil {
		return err
	}

	if *once {
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		res, err := p.PollOnce(ctx, start)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(res); eerr != nil && err == nil {
			err = eerr
		}
		return err
	}

	log.Info().Str("nats", nc.ConnectedUrlRedacted()).Dur("interval", *interval).Str("requests", poller.RunSubject(*tenant)).
		Strs("kinds", cfg.Kinds).Msg("poller running")
	var g run.Group
	g.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	{
		rctx, cancel := context.WithCancel(ctx)
		g.Add(func() error {
			if !start.IsZero() {
				res, err := p.PollOnce(rctx, start)
				logOneOff(log, res, err)
			}
			return p.Run(rctx, *interval)
		}, func(error) { cancel() })
	}
	{
		sctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return p.Serve(sctx) }, func(error) { cancel() })
	}
	err = g.Run()
	if derr := nc.Drain(); derr != nil {
		log.Warn().Err(derr).Msg("drain")
	}
	if errors.Is(err, run.ErrSignal) || ctx.Err() != nil {
		return nil // asked to stop: the poll under way was cut short, its checkpoints kept
	}
	return err
}

func logOneOff(log zerolog.Logger, res poller.Result, err error) {
	t := res.Total()
	ev := log.Info()
	if err != nil {
		ev = log.Error().Err(err)
	}
	ev.Int("seen", t.Seen).Int("published", t.Published).Int("duplicates", t.Duplicates).Msg("one-off poll (-since) done")
}
