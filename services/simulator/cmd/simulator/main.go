// Command simulator serves fieldstream's simulated outside world as a process of its own —
// the ServiceTrade API, the asset registry, the work-order system and Paycom payroll, each
// on its address with its fault injector under /admin/ — and, on request, sends the
// simulated account's changes to a hook URL as ServiceTrade webhooks (see simulator.Feed,
// served beside the ServiceTrade API). The chaos campaign runs it; see -h for every setting.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/oklog/run"

	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

func main() {
	err := runMain(context.Background(), os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "simulator:", err)
		os.Exit(1)
	}
}

func runMain(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addrs := map[string]*string{
		"servicetrade": fs.String("servicetrade-addr", "127.0.0.1:9101", "simulated ServiceTrade API (under /api; the feed under "+simulator.FeedPrefix+")"),
		"assets":       fs.String("assets-addr", "127.0.0.1:9102", "simulated asset registry"),
		"workorders":   fs.String("workorders-addr", "127.0.0.1:9103", "simulated work-order system"),
		"paycom":       fs.String("paycom-addr", "127.0.0.1:9104", "simulated Paycom payroll"),
	}
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
	if err := envflag.Parse(fs, args, "FS_SIM", nil, getenv); err != nil {
		return err
	}

	stack, err := simulator.NewStack(sc)
	if err != nil {
		return err
	}
	f, err := simulator.NewFeed(stack, feed)
	if err != nil {
		return err
	}
	handlers := stack.Handlers()
	api := http.NewServeMux()
	api.Handle(simulator.FeedPrefix, f.Handler())
	api.Handle("/", handlers["servicetrade"])
	handlers["servicetrade"] = api

	var g run.Group
	g.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	feedCtx, stopFeed := context.WithCancel(ctx)
	g.Add(func() error { <-feedCtx.Done(); f.Stop(); return nil }, func(error) { stopFeed() })
	for name, h := range handlers {
		ln, err := net.Listen("tcp", *addrs[name])
		if err != nil {
			return fmt.Errorf("simulated %s: %w", name, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		g.Add(func() error { return srv.Serve(ln) }, func(error) { _ = srv.Close() })
	}
	err = g.Run()
	if errors.Is(err, run.ErrSignal) {
		return nil
	}
	return err
}
