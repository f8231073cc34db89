// Command gateway receives webhooks and publishes their events to JetStream. It connects
// to the NATS server at -nats-url (or NATS_URL); see -h for every setting.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/run"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/pkg/natsconn"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/gateway"
)

func main() {
	err := runMain(context.Background(), os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func runMain(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		httpAddr     = fs.String("http-addr", "127.0.0.1:8080", "HTTP listen address")
		applyStreams = fs.Bool("apply-streams", true, "create or update the streams of streams/ at start-up")
		logLevel     = fs.String("log-level", "info", "log level: debug, info, warn, error")
		debugAddr    = fs.String("debug-addr", "", "if set, serve Go's /debug/pprof/ on this address (keep it on loopback)")
		gcfg         gateway.Config
		sopt         gateway.StreamOptions
		nopt         natsconn.Options
	)
	nopt.RegisterFlags(fs, "nats://127.0.0.1:4222")
	gcfg.RegisterFlags(fs)
	sopt.RegisterFlags(fs)
	if err := envflag.Parse(fs, args, "FS", natsconn.EnvFallbacks, getenv); err != nil {
		return err
	}
	level, err := zerolog.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := zerolog.New(stderr).Level(level).With().Timestamp().Str("service", "gateway").Logger()

	nc, err := natsconn.Connect(nopt, "fieldstream-gateway", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return err
	}
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if *applyStreams {
		if err := gateway.ApplyStreams(setupCtx, js, sopt); err != nil {
			return err
		}
	}
	kv, err := tenant.OpenBucket(setupCtx, js)
	if err != nil {
		return err
	}
	tenants, err := tenant.Watch(ctx, kv, log)
	if err != nil {
		return err
	}
	defer tenants.Stop()

	gcfg.JetStream, gcfg.Tenants, gcfg.Logger = js, tenants, log
	gw, err := gateway.New(gcfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	srv := gateway.NewHTTPServer(*httpAddr, gw)
	log.Info().Str("http", "http://"+ln.Addr().String()).Str("nats", nc.ConnectedUrlRedacted()).Msg("gateway serving")

	var g run.Group
	if *debugAddr != "" {
		dln, err := net.Listen("tcp", *debugAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		dsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		g.Add(func() error { return dsrv.Serve(dln) }, func(error) { dsrv.Close() })
	}
	g.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	g.Add(func() error { return srv.Serve(ln) }, func(error) {
		// Shutdown waits for in-flight requests, which wait for their acks.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	err = g.Run()
	log.Info().Msg("draining NATS connection")
	if derr := nc.Drain(); derr != nil {
		log.Warn().Err(derr).Msg("drain")
	}
	if errors.Is(err, run.ErrSignal) {
		return nil
	}
	return err
}
