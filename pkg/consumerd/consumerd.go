// Package consumerd is the process around a fieldstream consumer service: the flags every
// service shares, a ServiceTrade client whose OAuth2 token is shared through JetStream KV,
// the consumer pipeline, /metrics and /healthz, on the process skeleton of pkg/daemon. A
// service's main declares its own flags, then calls Main with a function that describes the
// service.
package consumerd

import (
	"context"
	"flag"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/streams"
)

// Flags are the settings every consumer service has besides daemon's.
type Flags struct {
	MetricsAddr  string
	Consumer     consumer.Config
	ServiceTrade servicetrade.Config
}

// Register binds f to fs; metricsAddr is the service's default /metrics address.
func (f *Flags) Register(fs *flag.FlagSet, metricsAddr string) {
	fs.StringVar(&f.MetricsAddr, "metrics-addr", metricsAddr, "address of /metrics, /healthz and /readyz")
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

// Main runs the service that service returns as a daemon (see daemon.Main): fs holds the
// service's own flags and f, registered; service is called once they are parsed, so the
// settings it captures are the ones given. The process serves /metrics, /healthz and /readyz on
// f.MetricsAddr and consumes until SIGINT or SIGTERM, then drains.
func Main(fs *flag.FlagSet, f *Flags, service func() Service) {
	daemon.Main(daemon.Program{Name: fs.Name(), Flags: fs, Wire: func(setup context.Context, p *daemon.Process) error {
		return Start(setup, p, service(), f.Consumer, f.ServiceTrade, f.MetricsAddr)
	}})
}

// Start builds service s on p and adds it as an actor, with /metrics, /healthz and /readyz
// (NATS connected and EVENTS answering) served on metricsAddr unless it is empty (a process
// serving its metrics elsewhere).
func Start(setup context.Context, p *daemon.Process, s Service, cc consumer.Config, st servicetrade.Config, metricsAddr string) error {
	m, err := consumer.NewMetrics(p.Metrics)
	if err != nil {
		return err
	}
	if st.OnGrant, err = servicetrade.GrantCounter(p.Metrics); err != nil {
		return err
	}
	pl, err := Pipeline(setup, p.JetStream, s, cc, st, consumer.PipelineOptions{Metrics: m}, p.Log.With().Str("consumer", s.Name).Logger())
	if err != nil {
		return err
	}
	if metricsAddr != "" {
		// Ready while the stream it consumes answers: a replica that cannot reach EVENTS'
		// leader applies nothing.
		p.ReadyWhen(p.StreamAnswers(streams.Events))
		addr, err := p.ServeOps(metricsAddr)
		if err != nil {
			return err
		}
		p.Log.Info().Str("consumer", s.Name).Str("metrics", "http://"+addr.String()+"/metrics").Msg("consuming")
	}
	p.Go(pl.Run)
	return nil
}

// Pipeline builds service s on js: its ServiceTrade client (token shared in KV), its
// handler and its consumer pipeline. ctx bounds the set-up only.
func Pipeline(ctx context.Context, js jetstream.JetStream, s Service, cc consumer.Config, st servicetrade.Config, opts consumer.PipelineOptions, log zerolog.Logger) (*consumer.Pipeline, error) {
	st.Logger = log
	client, err := servicetrade.NewShared(ctx, js, st)
	if err != nil {
		return nil, err
	}
	h, err := s.Build(ctx, Deps{JetStream: js, ServiceTrade: client, Logger: log})
	if err != nil {
		return nil, err
	}
	cc.Name, cc.FilterSubjects, cc.Logger = s.Name, s.Subjects, log
	if cc.Description == "" {
		cc.Description = s.Description
	}
	return consumer.NewPipeline(ctx, js, cc, h, opts)
}
