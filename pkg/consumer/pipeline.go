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
	// ReplayPoll is how often the service looks for replays requested of it
	// (DefaultReplayPoll if 0).
	ReplayPoll time.Duration
}

// DefaultReplayPoll is how often a service looks for replays requested of it.
const DefaultReplayPoll = 250 * time.Millisecond

// Pipeline is a consumer with the standard middleware around its handler, outermost first:
// metrics, dead letters, skipping entities deleted since, panic recovery, the idempotency
// ledger, decoding, in-process retries. Its handler receives decoded messages.
//
// Besides its live consumer on EVENTS it runs, through the same handler and ledger, the
// replays an operator requests of it (replay consumers on EVENTS, see ReplayWindow) and its
// redriven dead letters (a consumer on DLQ), and it dead-letters messages that reach
// MaxDeliver without a verdict on any of them (see WatchMaxDeliveries).
type Pipeline struct {
	*Consumer
	// Redrives consumes this consumer's redriven dead letters.
	Redrives     *Consumer
	Ledger       *Ledger
	DeadLetters  *DeadLetters
	replays      *replays
	stopWatching func()
}

// NewPipeline opens the ledger of cfg.Name, creates or updates the durable consumers, and
// returns them ready to Run.
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
	ledger.WriteClaims(cfg.LedgerWrites)
	if err := ledger.TrackSequences(ctx, events); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", cfg.Name, err)
	}
	dl := NewDeadLetters(js, cfg.Name, cfg.MaxDeliver, ledger, cfg.Logger)
	dl.stream = cfg.DeadLetterStream
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
	redrives, err := newRedrive(ctx, js, cfg, h)
	if err != nil {
		return nil, err
	}
	if opts.ReplayPoll == 0 {
		opts.ReplayPoll = DefaultReplayPoll
	}
	stopWatching, err := dl.WatchMaxDeliveries(ctx, js, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("watch max deliveries: %w", err)
	}
	return &Pipeline{Consumer: c, Redrives: redrives, Ledger: ledger, DeadLetters: dl, stopWatching: stopWatching,
		replays: &replays{js: js, events: events, cfg: cfg, handler: h, poll: opts.ReplayPoll}}, nil
}

// Run consumes EVENTS, the replays requested of this consumer and its redriven dead letters
// until ctx ends (see Consumer.Run), then stops watching advisories and stores what the
// ledger keeps in memory.
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.stopWatching()
	errs := make(chan error, 2)
	go func() { errs <- p.Redrives.Run(ctx) }()
	go func() { errs <- p.replays.run(ctx) }()
	err := p.Consumer.Run(ctx)
	err = errors.Join(err, <-errs, <-errs)
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Ledger.Flush(fctx)
	return err
}
