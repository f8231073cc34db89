package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PipelineOptions are the parts of a consumer service beside its Config.
type PipelineOptions struct {
	// LedgerTTL is how long applied events are remembered (DefaultLedgerTTL if 0).
	LedgerTTL time.Duration
	// RecentApplied is how many applied event ids are also kept in memory
	// (DefaultRecentApplied if 0; negative: none).
	RecentApplied int
	// Retry bounds in-process retries.
	Retry RetryConfig
	// Metrics, if set, counts outcomes.
	Metrics *Metrics
}

// Pipeline is a consumer with the standard middleware around its handler, outermost first:
// metrics, dead letters, skipping entities deleted since, panic recovery, the idempotency
// ledger, decoding, in-process retries. Its handler receives decoded messages. It also
// dead-letters messages that reach MaxDeliver without a verdict (see WatchMaxDeliveries).
type Pipeline struct {
	*Consumer
	// Replays consumes this consumer's re-deliveries from the REPLAY stream through the
	// same handler.
	Replays      *Consumer
	Ledger       *Ledger
	DeadLetters  *DeadLetters
	stopWatching func()
}

// NewPipeline opens the ledger of cfg.Name, creates or updates the durable consumer, and
// returns it ready to Run.
func NewPipeline(ctx context.Context, js jetstream.JetStream, cfg Config, handler BatchHandler, opts PipelineOptions) (*Pipeline, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	events, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Stream, err)
	}
	// The ledger is as replicated as the stream whose events it records.
	ledger, err := OpenLedger(ctx, js, cfg.Name, opts.LedgerTTL, events.CachedInfo().Config.Replicas)
	if err != nil {
		return nil, err
	}
	if opts.RecentApplied == 0 {
		opts.RecentApplied = DefaultRecentApplied
	}
	ledger.Remember(opts.RecentApplied)
	if err := ledger.TrackSequences(ctx, events); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", cfg.Name, err)
	}
	dl := NewDeadLetters(js, cfg.Name, cfg.MaxDeliver, ledger, cfg.Logger)
	mws := []Middleware{}
	if opts.Metrics != nil {
		mws = append(mws, opts.Metrics.Middleware(cfg.Name))
	}
	mws = append(mws, DeadLetter(dl), SkipDeleted(js, cfg.Stream), Recover(), Idempotent(ledger), Decode(), Retry(opts.Retry))
	h := Chain(handler, mws...)
	c, err := New(ctx, js, cfg, h)
	if err != nil {
		return nil, err
	}
	rcfg := cfg
	rcfg.Stream, rcfg.DeliverPolicy = cfg.ReplayStream, jetstream.DeliverAllPolicy
	rcfg.FilterSubjects = []string{ReplaySubject(cfg.Name, ">")}
	rcfg.Description = "re-deliveries (replays, redriven dead letters) for " + cfg.Name
	replays, err := New(ctx, js, rcfg, h)
	if err != nil {
		return nil, err
	}
	stopWatching, err := dl.WatchMaxDeliveries(ctx, js, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("watch max deliveries: %w", err)
	}
	return &Pipeline{Consumer: c, Replays: replays, Ledger: ledger, DeadLetters: dl, stopWatching: stopWatching}, nil
}

// Run consumes EVENTS and this consumer's re-deliveries until ctx ends (see Consumer.Run),
// then stops watching advisories.
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.stopWatching()
	errs := make(chan error, 1)
	go func() { errs <- p.Replays.Run(ctx) }()
	err := p.Consumer.Run(ctx)
	return errors.Join(err, <-errs)
}
