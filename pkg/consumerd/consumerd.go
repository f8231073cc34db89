// Package consumerd is the process around a fieldstream consumer service: the flags every
// service shares, the NATS connection, a ServiceTrade client whose OAuth2 token is shared
// through JetStream KV, the consumer pipeline, /metrics and /healthz, and a draining
// shutdown. A service's main declares its own flags, then calls Main with a function that
// builds its handler.
package consumerd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/pkg/natsconn"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
)

// Flags are the settings every consumer service has.
type Flags struct {
	NATSURL      string
	MetricsAddr  string
	LogLevel     string
	Consumer     consumer.Config
	ServiceTrade servicetrade.Config
}

// Register binds f to fs; metricsAddr is the service's default /metrics address.
func (f *Flags) Register(fs *flag.FlagSet, metricsAddr string) {
	fs.StringVar(&f.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	fs.StringVar(&f.MetricsAddr, "metrics-addr", metricsAddr, "address of /metrics and /healthz")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.Consumer.RegisterFlags(fs)
	f.ServiceTrade.RegisterFlags(fs, "http://127.0.0.1:9101/api")
}

// Deps are what a service's handler is built from.
type Deps struct {
	JetStream    jetstream.JetStream
	ServiceTrade *servicetrade.Client
	Logger       zerolog.Logger
}

// Service describes one consumer service.
type Service struct {
	Name     string
	Subjects []string
	// Description is shown by `nats consumer report EVENTS`; streams/consumers/<Name>.json
	// holds the same definition for the nats CLI.
	Description string
	// Build returns the service's handler; it runs after flags are parsed and NATS is
	// connected.
	Build func(ctx context.Context, d Deps) (consumer.BatchHandler, error)
}

// Main parses args (flags, then FS_* environment variables; -nats-url also reads NATS_URL)
// into f and fs, then runs the service until SIGINT or SIGTERM. f must already be
// registered on fs, with the service's own flags beside it. service is called only after
// parsing, so that a Service built from the service's own flags (its sink's URL and
// credentials) sees their values rather than their zero values.
func Main(ctx context.Context, service func() Service, fs *flag.FlagSet, f *Flags, args []string, getenv func(string) string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := envflag.Parse(fs, args, "FS", map[string]string{"nats-url": "NATS_URL"}, getenv); err != nil {
		return err
	}
	s := service()
	level, err := zerolog.ParseLevel(f.LogLevel)
	if err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := zerolog.New(stderr).Level(level).With().Timestamp().Str("service", s.Name).Logger()
	nc, err := natsconn.Connect(f.NATSURL, "fieldstream-"+s.Name, log)
	if err != nil {
		return err
	}
	defer nc.Drain()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := consumer.NewMetrics(reg)
	if err != nil {
		return err
	}
	p, err := Pipeline(ctx, js, s, f.Consumer, f.ServiceTrade, consumer.PipelineOptions{Metrics: m}, log)
	if err != nil {
		return err
	}
	return consumer.Serve(ctx, p, f.MetricsAddr, reg, log)
}

// Pipeline builds service s on js: its ServiceTrade client (token shared in KV), its
// handler and its consumer pipeline. The all-in-one binary uses it to run every service in
// one process, and tests to run them against the simulators.
func Pipeline(ctx context.Context, js jetstream.JetStream, s Service, cc consumer.Config, st servicetrade.Config, opts consumer.PipelineOptions, log zerolog.Logger) (*consumer.Pipeline, error) {
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st.Logger = log
	client, err := servicetrade.NewShared(setup, js, st)
	if err != nil {
		return nil, err
	}
	h, err := s.Build(setup, Deps{JetStream: js, ServiceTrade: client, Logger: log})
	if err != nil {
		return nil, err
	}
	cc.Name, cc.FilterSubjects, cc.Logger = s.Name, s.Subjects, log
	if cc.Description == "" {
		cc.Description = s.Description
	}
	return consumer.NewPipeline(setup, js, cc, h, opts)
}
