package gateway

import (
	"context"
	"flag"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/streams"
)

// RegisterFlags binds c's tunables to fs, their defaults those of a zero Config, so every
// binary that runs a gateway offers the same settings under the same names.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.setDefaults()
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest webhook body accepted; larger answers 413")
	fs.DurationVar(&c.AnswerWithin, "answer-within", c.AnswerWithin, "answer every webhook within this (ServiceTrade gives up after 5s)")
	fs.DurationVar(&c.Tolerance, "timestamp-tolerance", c.Tolerance, "Standard Webhooks timestamp tolerance, either way")
	fs.Float64Var(&c.RatePerSecond, "tenant-rate", c.RatePerSecond, "events per second a tenant may send unless its record says otherwise")
	fs.IntVar(&c.Burst, "tenant-burst", c.Burst, "events a tenant may send at once unless its record says otherwise")
	fs.IntVar(&c.CommitMaxEvents, "commit-max-events", c.CommitMaxEvents, "most events of concurrent requests group-committed as one atomic batch; 1 publishes each event alone, faster when the server does not fsync before every ack (sync_interval default)")
	fs.IntVar(&c.CommitConcurrency, "commit-concurrency", c.CommitConcurrency, "most group-commit batches in flight at once")
	fs.DurationVar(&c.RetryAfter, "retry-after", c.RetryAfter, "Retry-After of a 503 when JetStream cannot persist in time")
	fs.DurationVar(&c.UnavailableAfter, "unavailable-after", c.UnavailableAfter, "JetStream acknowledging nothing this long while a publish waits (no stream leader, a failed store) makes the gateway answer 503 at once, with one probe request per interval, until a publish succeeds")
}

// Settings are how a gateway is started: its Config, where it listens, and the streams it
// applies first.
type Settings struct {
	Config Config
	// HTTPAddr is the webhook endpoints' listen address.
	HTTPAddr string
	// ApplyStreams creates or updates the streams of streams/ (with Streams applied) at
	// start-up; a gateway whose NATS user may not do that leaves it to `fsctl setup`.
	ApplyStreams bool
	Streams      streams.Options
}

// RegisterFlags binds s to fs.
func (s *Settings) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address of the webhook endpoints, /readyz and /metrics")
	fs.BoolVar(&s.ApplyStreams, "apply-streams", true, "create or update the streams of streams/ at start-up")
	s.Config.RegisterFlags(fs)
	s.Streams.RegisterFlags(fs)
}

// Open starts a gateway on js the one way every binary and test does: it applies the
// streams (if s says so), opens the tenants bucket and follows it, and returns the Gateway
// serving those tenants. ctx bounds the start only; Close stops following the bucket. The
// gateway logs through log and counts into s.Config.Metrics.
func Open(ctx context.Context, js jetstream.JetStream, s Settings, log zerolog.Logger) (*Gateway, error) {
	if s.ApplyStreams {
		if _, err := streams.Apply(ctx, js, s.Streams); err != nil {
			return nil, err
		}
	}
	kv, err := tenant.OpenBucket(ctx, js)
	if err != nil {
		return nil, err
	}
	tenants, err := tenant.Watch(ctx, kv, log)
	if err != nil {
		return nil, err
	}
	cfg := s.Config
	cfg.JetStream, cfg.Tenants, cfg.Logger = js, tenants, log
	g, err := New(cfg)
	if err != nil {
		_ = tenants.Stop()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.closers = append(g.closers, tenants.Stop)
	return g, nil
}

// Close stops what Open started; a Gateway made with New has nothing to close.
func (g *Gateway) Close() error {
	var first error
	for _, c := range g.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	g.closers = nil
	return first
}
