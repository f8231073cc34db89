package gateway

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/streamdef"
	"github.com/fieldstream/fieldstream/streams"
)

// RegisterFlags binds c's tunables to fs with their defaults, so every binary that runs a
// gateway offers the same settings under the same names.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", 1<<20, "largest webhook body accepted; larger answers 413")
	fs.DurationVar(&c.AnswerWithin, "answer-within", 4*time.Second, "answer every webhook within this (ServiceTrade gives up after 5s)")
	fs.DurationVar(&c.Tolerance, "timestamp-tolerance", 5*time.Minute, "Standard Webhooks timestamp tolerance, either way")
	fs.Float64Var(&c.RatePerSecond, "tenant-rate", 200, "events per second a tenant may send unless its record says otherwise")
	fs.IntVar(&c.Burst, "tenant-burst", 400, "events a tenant may send at once unless its record says otherwise")
	fs.IntVar(&c.CommitMaxEvents, "commit-max-events", 500, "most events of concurrent requests group-committed as one atomic batch; 1 publishes each event alone, faster when the server does not fsync before every ack (sync_interval default)")
	fs.IntVar(&c.CommitConcurrency, "commit-concurrency", 1, "most group-commit batches in flight at once")
	fs.DurationVar(&c.RetryAfter, "retry-after", 2*time.Second, "Retry-After of a 503 when JetStream cannot persist in time")
}

// StreamOptions adjust the stream definitions of streams/ at start-up.
type StreamOptions struct {
	// DuplicateWindow of EVENTS: must cover the sender's whole retry horizon.
	DuplicateWindow time.Duration
	// MaxAge of EVENTS: how long events stay replayable.
	MaxAge time.Duration
	// Replicas of every stream; 0 keeps each definition's (1). Use 3 on a cluster.
	Replicas int
}

// RegisterFlags binds o to fs.
func (o *StreamOptions) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.DuplicateWindow, "duplicate-window", 15*time.Minute, "EVENTS duplicate window: retries of one event within it are stored once")
	fs.DurationVar(&o.MaxAge, "events-max-age", 7*24*time.Hour, "how long EVENTS keeps events")
	fs.IntVar(&o.Replicas, "stream-replicas", 0, "replicas of every stream (0 keeps the definition's; 3 on a cluster)")
}

// ApplyStreams creates or updates every stream of streams/ with o applied, never deleting or
// purging anything.
func ApplyStreams(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	cfgs, err := streamdef.Load(streams.Files)
	if err != nil {
		return err
	}
	ev, ok := streamdef.Find(cfgs, "EVENTS")
	if !ok {
		return fmt.Errorf("streams/: no EVENTS definition")
	}
	if o.DuplicateWindow > 0 {
		ev.Duplicates = o.DuplicateWindow
	}
	if o.MaxAge > 0 {
		ev.MaxAge = o.MaxAge
	}
	if o.Replicas > 0 {
		for i := range cfgs {
			cfgs[i].Replicas = o.Replicas
		}
	}
	return streamdef.Apply(ctx, js, cfgs)
}
