// Package daemon is the process skeleton every fieldstream binary shares, so that each
// main only wires: settings as flags filled from the environment, a logger, the NATS
// connection (or an embedded server), a set-up deadline, the actors the program runs — one
// per server, consumer and loop, with the signal handler, under oklog/run — and a shutdown
// that drains: every actor is interrupted and returns, then the NATS connection is drained,
// then what the program deferred is closed, last first.
package daemon

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

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/pkg/natsconn"
	"github.com/fieldstream/fieldstream/pkg/probe"
	"github.com/fieldstream/fieldstream/pkg/tracing"
)

// Program describes a binary to Run.
type Program struct {
	// Name names the binary in logs (service=<Name>), in its NATS connection
	// (fieldstream-<Name>) and in -h.
	Name string
	// Flags holds the program's own flags, registered before Run; Run adds the shared
	// ones (-nats-*, -log-level, -log-format, -setup-timeout, -debug-addr) and fills every
	// flag from the command line, then the environment (EnvPrefix_<FLAG>), then its
	// default. Nil: the program has no flags of its own.
	Flags *flag.FlagSet
	// EnvPrefix of the environment variables behind the flags (default "FS").
	EnvPrefix string
	// WithoutNATS: the program does not connect to NATS (it has no -nats-* flags).
	WithoutNATS bool
	// Embed, if set, makes -nats-url default to empty, and an empty -nats-url runs a NATS
	// server in the process with Embed (natsembed.Start, say) as the flags -data-dir,
	// -nats-listen and -sync-always say, and connects to it. Only a program that embeds
	// links a server.
	Embed func(EmbedConfig) (clientURL string, shutdown func(), err error)
	// ConsoleLog makes -log-format default to "console" (for people) instead of "json".
	ConsoleLog bool
	// Validate, if set, checks the program's settings once they are parsed, before anything
	// connects.
	Validate func() error
	// Wire builds the program within the set-up deadline and adds its actors to p. setup
	// bounds the set-up only: nothing may keep it; long-lived work runs in actors (p.Go,
	// p.Serve) with the context they are given.
	Wire func(setup context.Context, p *Process) error
}

// EmbedConfig is what the flags say of an embedded NATS server.
type EmbedConfig struct {
	Host       string
	Port       int
	StoreDir   string // absolute
	SyncAlways bool   // fsync before every acknowledgement (sync_interval: always)
	// Logger is for the server's warnings and errors.
	Logger zerolog.Logger
}

// Env is what a process gets from the operating system; tests give their own.
type Env struct {
	Args           []string
	Getenv         func(string) string
	Stdout, Stderr io.Writer
}

// Main runs prog with the process's arguments, environment and standard streams, and
// exits non-zero if it fails. -h prints every setting and exits zero.
//
// `<binary> -probe URL` (nothing else on the command line) runs no program: it checks the
// health endpoint URL and exits 0 if it answers 2xx, 1 otherwise — the health check of an
// image built FROM scratch, which has no shell or curl (package probe).
func Main(prog Program) {
	if url, ok := probe.URLFromArgs(os.Args[1:]); ok {
		probe.Exit(url)
	}
	err := Run(context.Background(), prog, Env{Args: os.Args[1:], Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog.Name, err)
		os.Exit(1)
	}
}

// Process is a running program: what Wire builds with and adds its actors to.
type Process struct {
	Name string
	Log  zerolog.Logger
	// Conn and JetStream are the process's NATS connection; nil WithoutNATS.
	Conn      *nats.Conn
	JetStream jetstream.JetStream
	// Metrics is the process's Prometheus registry (Go and process collectors included);
	// ServeOps serves it.
	Metrics *prometheus.Registry
	// NATSURL is the URL connected to (the embedded server's, if one runs).
	NATSURL string
	// Embedded is the configuration of the NATS server the process embeds; nil when it
	// connects to a server of its own.
	Embedded *EmbedConfig
	Stdout   io.Writer

	group    run.Group
	ready    []func(context.Context) error
	ownsConn bool // Run connected: Shutdown drains and closes the connection
	closers  []func()
	actors   int
	stopping context.Context
}

// New returns a process around an existing connection (nil: none), for programs assembled
// by tests; Run builds its own. The connection stays the caller's: the process neither
// drains nor closes it.
func New(name string, nc *nats.Conn, log zerolog.Logger) (*Process, error) {
	p := &Process{Name: name, Log: log, Conn: nc, Metrics: prometheus.NewRegistry(), Stdout: io.Discard}
	p.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if nc != nil {
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
		if err != nil {
			return nil, err
		}
		p.JetStream, p.NATSURL = js, nc.ConnectedUrlRedacted()
	}
	return p, nil
}

// Go runs f as an actor: f runs until its context ends, when the process stops, and must
// then return; if f returns first — with an error or, for a one-shot task, nil — the
// process stops and Run returns that error.
func (p *Process) Go(f func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	p.actors++
	p.group.Add(func() error { return f(ctx) }, func(error) { cancel() })
}

// Serve listens on addr now — so that an address in use fails the set-up — and serves srv
// on it as an actor; stopping shuts srv down, letting requests in flight finish (within 10
// s). A zero srv.ReadHeaderTimeout is set to 5 s. It returns the address listened on.
func (p *Process) Serve(addr string, srv *http.Server) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = 5 * time.Second
	}
	p.actors++
	p.group.Add(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, func(error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // waits for requests in flight, which wait for their acks
	})
	return ln.Addr(), nil
}

// ServeOps serves /metrics (the process's registry), /healthz and /readyz on addr as an
// actor, for programs without an HTTP server of their own. /healthz answers 200 while the
// process serves HTTP; /readyz 200 only while the NATS connection (if any) is up and every
// check added with ReadyWhen passes within a second, else 503 with the reason.
func (p *Process) ServeOps(addr string) (net.Addr, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.Metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := p.checkReady(r.Context()); err != nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return p.Serve(addr, &http.Server{Handler: mux})
}

// ReadyWhen adds a check to the /readyz ServeOps serves: the process is ready only while
// check returns nil (within a second). Add checks in Wire.
func (p *Process) ReadyWhen(check func(ctx context.Context) error) { p.ready = append(p.ready, check) }

// StreamAnswers is a ReadyWhen check: the stream named name answers (it has a leader the
// connection reaches).
func (p *Process) StreamAnswers(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := p.JetStream.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		return nil
	}
}

func (p *Process) checkReady(ctx context.Context) error {
	if p.Conn != nil && !p.Conn.IsConnected() {
		return fmt.Errorf("not connected to NATS (%s)", p.Conn.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for _, check := range p.ready {
		if err := check(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Defer runs f when the process has stopped: after every actor returned and the NATS
// connection drained; the last deferred runs first.
func (p *Process) Defer(f func()) { p.closers = append(p.closers, f) }

// Run runs the actors until one returns or ctx ends, then stops them all, drains the NATS
// connection and runs what was deferred. A stop asked for (ctx, or a signal if
// withSignals) is no error.
func (p *Process) Run(ctx context.Context, withSignals bool) error {
	defer p.Shutdown()
	if withSignals {
		p.group.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	} else {
		stop, cancel := context.WithCancel(ctx)
		p.group.Add(func() error { <-stop.Done(); return nil }, func(error) { cancel() })
	}
	err := p.group.Run()
	var sig *run.SignalError
	switch {
	case errors.As(err, &sig):
		p.Log.Info().Str("signal", sig.Signal.String()).Msg("stopping")
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return nil
	}
	return err
}

// Shutdown drains the NATS connection — what it had subscribed is handled, what it
// published is flushed — and runs what was deferred, once; Run calls it.
func (p *Process) Shutdown() {
	if p.ownsConn && !p.Conn.IsClosed() {
		closed := make(chan struct{})
		p.Conn.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := p.Conn.Drain(); err != nil {
			p.Log.Warn().Err(err).Msg("drain NATS connection")
			p.Conn.Close()
		}
		select { // Drain returns at once; the connection closes when drained or at its drain timeout
		case <-closed:
		case <-time.After(time.Minute):
			p.Log.Warn().Msg("NATS connection not closed a minute after drain")
		}
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// Run runs prog: it parses its settings from env, builds the logger, connects to NATS
// (embedding a server if prog says so and no URL is given), calls prog.Wire within the
// set-up deadline, then runs the actors until SIGINT or SIGTERM (or ctx ending, or an actor
// returning) and shuts down (see Process.Run).
func Run(ctx context.Context, prog Program, env Env) error {
	fs := prog.Flags
	if fs == nil {
		fs = flag.NewFlagSet(prog.Name, flag.ContinueOnError)
	}
	fs.Init(prog.Name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	var s settings
	s.register(fs, prog)
	prefix := prog.EnvPrefix
	if prefix == "" {
		prefix = "FS"
	}
	if err := envflag.Parse(fs, env.Args, prefix, natsconn.EnvFallbacks, env.Getenv); err != nil {
		return err
	}
	log, err := s.logger(env.Stderr, prog.Name)
	if err != nil {
		return err
	}
	if prog.Validate != nil {
		if err := prog.Validate(); err != nil {
			return err
		}
	}
	// Traces: W3C trace context always propagates; spans are exported over OTLP only when
	// the standard OTEL_* variables ask for it. Flushed last, after everything stopped.
	stopTracing, err := tracing.Setup(ctx, env.Getenv, prog.Name)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	// The set-up deadline bounds the wait for NATS and the program's Wire.
	setup, cancel := context.WithTimeout(ctx, s.setupTimeout)
	defer cancel()
	var nc *nats.Conn
	closeFirst := []func(){func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn().Err(err).Msg("flush traces")
		}
	}}
	var embedded *EmbedConfig
	if !prog.WithoutNATS {
		if s.nats.URL == "" && prog.Embed != nil {
			cfg, err := s.embedConfig(log)
			if err != nil {
				return err
			}
			url, shutdown, err := prog.Embed(cfg)
			if err != nil {
				return err
			}
			closeFirst = append(closeFirst, shutdown)
			s.nats.URL, embedded = url, &cfg
		}
		if nc, err = connect(setup, s.nats, "fieldstream-"+prog.Name, log); err != nil {
			runAll(closeFirst)
			return err
		}
	}
	p, err := New(prog.Name, nc, log)
	if err != nil {
		nc.Close()
		runAll(closeFirst)
		return err
	}
	p.Stdout, p.Embedded, p.ownsConn = env.Stdout, embedded, nc != nil
	p.closers = closeFirst
	if s.debugAddr != "" {
		if _, err := p.Serve(s.debugAddr, &http.Server{Handler: pprofMux()}); err != nil {
			p.Shutdown()
			return err
		}
	}
	err = prog.Wire(setup, p)
	cancel()
	if err != nil {
		p.Shutdown()
		return err
	}
	return p.Run(ctx, true)
}

// connect connects to NATS as natsconn.Connect does, but waits for a server that does not
// answer yet — one starting beside this process, or restarting — until ctx ends, so that
// services started in any order come up; a refusal (credentials, TLS) fails at once.
func connect(ctx context.Context, o natsconn.Options, name string, log zerolog.Logger) (*nats.Conn, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, 2*time.Second, 0
	b.Reset()
	for {
		nc, err := natsconn.Connect(o, name, log)
		if err == nil || !errors.Is(err, nats.ErrNoServers) {
			return nc, err
		}
		wait := b.NextBackOff()
		log.Info().Err(err).Dur("retry_in", wait).Msg("waiting for NATS")
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

func runAll(fs []func()) {
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func pprofMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
