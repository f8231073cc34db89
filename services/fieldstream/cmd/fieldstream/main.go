// Command fieldstream runs the whole pipeline in one process: an embedded NATS server with
// JetStream (unless -nats-url or NATS_URL names a server, or -nats-context a nats CLI
// context), the stream definitions, the webhook gateway, and a simulated ServiceTrade
// account sending it webhooks. It is what `make run` starts. See -h for every setting.
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
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/run"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/pkg/natsconn"
	"github.com/fieldstream/fieldstream/pkg/natsembed"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/fsctl/dashboard"
	"github.com/fieldstream/fieldstream/services/gateway"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// The demo tenant `make run` serves; the README documents these values.
const (
	demoTenant = "demo"
	demoToken  = "dev-token"
	demoSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

func main() {
	err := runMain(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fieldstream:", err)
		os.Exit(1)
	}
}

type options struct {
	dataDir    string
	nats       natsconn.Options // URL and Context empty: embed a server
	natsListen string
	syncAlways bool
	httpAddr   string
	simRate    float64
	simBatch   int
	demo       bool
	logLevel   string
	gateway    gateway.Config
	streams    gateway.StreamOptions

	consumers     bool
	pollInterval  time.Duration
	consumer      consumer.Config
	simAddrs      simAddrs
	tokenLifetime time.Duration
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("fieldstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.dataDir, "data-dir", ".data", "embedded JetStream's file store")
	o.nats.RegisterFlags(fs, "") // -nats-url or -nats-context: use that server (its credentials and TLS with it) instead of embedding one
	fs.StringVar(&o.natsListen, "nats-listen", "127.0.0.1:4222", "client address of the embedded NATS server (the nats CLI's default)")
	fs.BoolVar(&o.syncAlways, "sync-always", false, "embedded JetStream fsyncs before every ack (durable across power loss, slower)")
	fs.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "gateway HTTP listen address")
	fs.Float64Var(&o.simRate, "sim-rate", 3, "events per second the simulated ServiceTrade account sends (0 turns it off)")
	fs.IntVar(&o.simBatch, "sim-max-batch", servicetrade.DefaultMaxBatch, "most items in one simulated delivery")
	fs.BoolVar(&o.demo, "demo-tenant", true, "create tenant demo (token dev-token, the Standard Webhooks spec secret) if it does not exist")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.BoolVar(&o.consumers, "consumers", true, "run the assets, workorders and payroll consumers in this process (false: run them as their own binaries)")
	fs.DurationVar(&o.tokenLifetime, "sim-token-lifetime", time.Hour, "lifetime of the simulated ServiceTrade API's OAuth2 tokens")
	fs.DurationVar(&o.pollInterval, "poll-interval", 5*time.Minute, "how often the polling backstop walks the ServiceTrade API for tenant demo (0: never)")
	o.simAddrs.register(fs)
	o.gateway.RegisterFlags(fs)
	o.streams.RegisterFlags(fs)
	o.consumer.RegisterFlags(fs)
	err := envflag.Parse(fs, args, "FS", natsconn.EnvFallbacks, getenv)
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if o.nats.URL == "" && o.nats.Context == "" && !o.syncAlways && !given["commit-max-events"] {
		// An embedded server that does not fsync before every ack stores events published
		// one by one faster than as atomic batches: group commit only pays for fsyncs.
		o.gateway.CommitMaxEvents = 1
	}
	if err == nil && o.simRate < 0 {
		err = fmt.Errorf("-sim-rate %v: must not be negative", o.simRate)
	}
	return o, err
}

func runMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, TimeFormat: time.TimeOnly}).Level(level).With().Timestamp().Logger()

	where := "external NATS"
	if o.nats.URL == "" && o.nats.Context == "" {
		host, port, err := splitHostPort(o.natsListen)
		if err != nil {
			return fmt.Errorf("-nats-listen: %w", err)
		}
		dir, err := filepath.Abs(o.dataDir)
		if err != nil {
			return err
		}
		srv, err := natsembed.Start(natsembed.Config{Host: host, Port: port, StoreDir: dir, ServerName: "fieldstream",
			SyncAlways: o.syncAlways, Logger: log.With().Str("component", "nats").Logger().Level(zerolog.WarnLevel)})
		if err != nil {
			return err
		}
		defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
		o.nats.URL, where = srv.ClientURL(), "embedded JetStream, store "+dir
		if o.syncAlways {
			where += "; fsync before every ack"
		} else {
			where += "; fsync every 2 min: fast, but a machine crash can lose the last events acknowledged, -sync-always to fsync before every ack"
		}
	}

	nc, err := natsconn.Connect(o.nats, "fieldstream", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if o.nats.Context != "" {
		o.nats.URL, where = nc.ConnectedUrlRedacted(), "nats context "+o.nats.Context
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return err
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := gateway.ApplyStreams(setupCtx, js, o.streams); err != nil {
		return err
	}
	kv, err := tenant.OpenBucket(setupCtx, js)
	if err != nil {
		return err
	}
	if o.demo {
		if err := createDemoTenant(setupCtx, kv); err != nil {
			return err
		}
	}
	tenants, err := tenant.Watch(setupCtx, kv, log)
	if err != nil {
		return err
	}
	defer tenants.Stop()

	o.gateway.JetStream, o.gateway.Tenants, o.gateway.Logger = js, tenants, log.With().Str("component", "gateway").Logger()
	gw, err := gateway.New(o.gateway)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return err
	}
	dash, err := dashboard.New(js, dashboard.Options{})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", gw)
	mux.Handle("/dashboard/", dash) // one machine, loopback by default: operators only
	httpSrv := gateway.NewHTTPServer(o.httpAddr, mux)
	base := "http://" + dialable(ln.Addr())

	var g run.Group
	g.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	g.Add(func() error { return httpSrv.Serve(ln) }, func(error) {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(sctx) // waits for in-flight requests and their acks
	})
	stack, err := simulator.NewStack(simulator.StackConfig{TokenLifetime: o.tokenLifetime})
	if err != nil {
		return err
	}
	simURLs, err := serveStack(&g, stack, o.simAddrs, log)
	if err != nil {
		return err
	}
	if err := mapEmployees(ctx, js, stack); err != nil {
		return err
	}
	if o.pollInterval > 0 {
		if err := addPoller(ctx, &g, js, stack, simURLs, o.pollInterval, log.With().Str("component", "poller").Logger()); err != nil {
			return err
		}
	}
	if o.consumers {
		if err := addConsumers(ctx, &g, js, stack, simURLs, o.consumer, gw.Registry(), log); err != nil {
			return err
		}
	}
	if o.simRate > 0 {
		sender, err := servicetrade.NewSender(servicetrade.SenderConfig{
			URL:             base + "/hooks/" + demoTenant + "/servicetrade/" + demoToken,
			EventsPerSecond: o.simRate,
			MaxBatch:        o.simBatch,
			Logger:          log.With().Str("component", "servicetrade-sim").Logger(),
		}, stack.Account)
		if err != nil {
			return err
		}
		simCtx, stopSim := context.WithCancel(ctx)
		g.Add(func() error { return sender.Run(simCtx) }, func(error) { stopSim() })
	}
	printBanner(stdout, o.nats.URL, where, base, o.simRate, simURLs, o.consumers)

	err = g.Run()
	log.Info().Msg("shutting down: draining NATS")
	if derr := nc.Drain(); derr != nil {
		log.Warn().Err(derr).Msg("drain")
	}
	if errors.Is(err, run.ErrSignal) {
		return nil
	}
	return err
}

// createDemoTenant stores the demo tenant unless one exists: an operator's changes to it
// survive restarts.
func createDemoTenant(ctx context.Context, kv jetstream.KeyValue) error {
	if _, err := kv.Get(ctx, demoTenant); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	return tenant.Put(ctx, kv, demoTenant, tenant.Config{ServiceTradeToken: demoToken, StandardSecrets: []string{demoSecret}})
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := net.LookupPort("tcp", p)
	return host, port, err
}

// dialable turns a listener address into one a client can dial: an unspecified host
// becomes loopback.
func dialable(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
}
