// Package poller is fieldstream's polling backstop. ServiceTrade discards a webhook after
// three failed attempts, so the poller walks ServiceTrade's API for every entity updated
// since its last walk and publishes each one to EVENTS as a CloudEvent, the way the gateway
// publishes a webhook item, so that the consumers catch up on what was lost.
//
// Polled events restate a change rather than report one, and are marked so
// (Fs-Origin: poll): a consumer applies one only when it is strictly newer than what it
// already applied for the entity (pkg/consumer's ledger), so a change whose webhook did
// arrive is never applied twice. Their ids (Nats-Msg-Id pl:<tenant>:<entity>:<id>:<updated>)
// are stable across walks, so JetStream stores a re-read entity once within its duplicate
// window, and a consumer's ledger recognizes it after that.
//
// Progress is kept per tenant and kind in the KV bucket CheckpointBucket. A checkpoint
// moves only after JetStream acknowledged every event of the walk, so a crash re-reads
// rather than skips; each walk starts Overlap before it, because ServiceTrade's timestamps
// are whole seconds and a change may become visible after a walk has passed its time.
// Deletions cannot be seen by polling: a deleted entity is simply absent from the lists.
package poller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/streams"
)

// Defaults of Config.
const (
	DefaultOverlap         = 2 * time.Minute
	DefaultInitialLookback = time.Hour
	DefaultPageSize        = 100 // ServiceTrade's own default page size
	DefaultRetryInitial    = time.Second
	DefaultRetryMax        = 30 * time.Second
	DefaultRetryBudget     = 10 * time.Minute
)

// Config configures New. JetStream, Tenant and Source are required; every zero field takes
// the default in its comment.
type Config struct {
	// JetStream publishes the events, keeps the checkpoints and, through its connection,
	// answers poll requests (Serve).
	JetStream jetstream.JetStream
	// Tenant is the fieldstream tenant whose ServiceTrade account Source reads: the second
	// token of every subject published. Letters, digits, '-' and '_'.
	Tenant string
	// Source reads ServiceTrade; a *servicetrade.Client.
	Source Source
	// Kinds are the ServiceTrade resources walked, in order: KindJob, KindAsset,
	// KindLocation, KindClock. Default: all four (DefaultKinds).
	Kinds []string
	// Overlap is how far before its checkpoint a walk starts, because ServiceTrade's
	// timestamps are whole seconds and a change may land after a walk passed its second.
	// Default 2m. Events re-read in the overlap are deduplicated by JetStream.
	Overlap time.Duration
	// InitialLookback is how far back the first walk of a kind (one with no checkpoint)
	// starts. Default 1h.
	InitialLookback time.Duration
	// PageSize is the limit of a list request; a request that resumes a walk within a
	// second it has partly read asks for more, up to 500. Default 100, ServiceTrade's own.
	PageSize int
	// Retry paces the retries of transient API and publish errors.
	Retry RetryConfig
	// Logger receives one line per retry (debug) and per throttled request (debug); Run
	// logs each poll's outcome. The zero value logs nothing.
	Logger zerolog.Logger
	// Now is the clock of the initial lookback, of -since windows and of the events'
	// receivedtime. Default time.Now.
	Now func() time.Time
}

// RetryConfig paces retries; zero fields take the defaults in their comments.
type RetryConfig struct {
	// InitialInterval is the first wait after a transient error (default 1s); waits double,
	// jittered by ±50%, up to MaxInterval (default 30s). A 429's Retry-After is waited
	// instead.
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// Budget is how long a walk keeps retrying without making progress before it gives up
	// with the last error (default 10m). The next scheduled poll starts again from the
	// checkpoint, which the failed walk did not move.
	Budget time.Duration
}

func (c RetryConfig) withDefaults() RetryConfig {
	if c.InitialInterval == 0 {
		c.InitialInterval = DefaultRetryInitial
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = DefaultRetryMax
	}
	if c.Budget == 0 {
		c.Budget = DefaultRetryBudget
	}
	return c
}

// Validate reports every setting New would reject.
func (c Config) Validate() error {
	var errs []error
	if c.JetStream == nil {
		errs = append(errs, errors.New("JetStream is required"))
	}
	if c.Source == nil {
		errs = append(errs, errors.New("Source is required"))
	}
	if !event.ValidToken(c.Tenant) {
		errs = append(errs, fmt.Errorf("Tenant %q: want letters, digits, '-' and '_'", c.Tenant))
	}
	seen := map[string]bool{}
	for _, k := range c.Kinds {
		if _, ok := kindOf(k); !ok {
			errs = append(errs, fmt.Errorf("Kinds: %q: want one of %v", k, DefaultKinds()))
		} else if seen[k] {
			errs = append(errs, fmt.Errorf("Kinds: %q twice", k))
		}
		seen[k] = true
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Overlap", c.Overlap}, {"InitialLookback", c.InitialLookback},
		{"Retry.InitialInterval", c.Retry.InitialInterval}, {"Retry.MaxInterval", c.Retry.MaxInterval}, {"Retry.Budget", c.Retry.Budget},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative", d.name, d.v))
		}
	}
	if c.PageSize < 0 {
		errs = append(errs, fmt.Errorf("PageSize %d: must not be negative", c.PageSize))
	}
	return errors.Join(errs...)
}

// RegisterFlags binds c's settings to fs, their defaults those of a zero Config (the
// JetStream, Source, Kinds and Logger are the caller's).
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := c.withDefaults()
	fs.StringVar(&c.Tenant, "tenant", "", "the fieldstream tenant whose ServiceTrade account is polled (required)")
	fs.DurationVar(&c.Overlap, "overlap", d.Overlap, "each walk starts this long before its checkpoint (ServiceTrade's timestamps are whole seconds)")
	fs.DurationVar(&c.InitialLookback, "initial-lookback", d.InitialLookback, "a kind with no checkpoint yet is polled from this long ago")
	fs.IntVar(&c.PageSize, "page-size", d.PageSize, "entities per list request (at most the API's cap)")
	fs.DurationVar(&c.Retry.Budget, "retry-budget", d.Retry.Budget, "a walk retrying transient errors without progress for this long gives up until the next poll")
}

func (c Config) withDefaults() Config {
	if len(c.Kinds) == 0 {
		c.Kinds = DefaultKinds()
	}
	c.Kinds = slices.Clone(c.Kinds)
	if c.Overlap == 0 {
		c.Overlap = DefaultOverlap
	}
	if c.InitialLookback == 0 {
		c.InitialLookback = DefaultInitialLookback
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	c.Retry = c.Retry.withDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Poller polls one tenant's ServiceTrade account. Its methods are safe for concurrent use;
// polls run one at a time (a second PollOnce waits for the first), so that two walks never
// race on a checkpoint.
type Poller struct {
	cfg   Config
	kinds []kind
	cps   *checkpoints
	busy  chan struct{} // holds one token while a poll runs
}

// New returns a Poller per cfg. It opens (creating if needed) the checkpoint bucket and
// checks that the EVENTS stream exists; it reads nothing from ServiceTrade.
func New(ctx context.Context, cfg Config) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("poller: config: %w", err)
	}
	cfg = cfg.withDefaults()
	if _, err := cfg.JetStream.Stream(ctx, streams.Events); err != nil {
		return nil, fmt.Errorf("poller: stream %s (the gateway creates it at start-up): %w", streams.Events, err)
	}
	cps, err := openCheckpoints(ctx, cfg.JetStream)
	if err != nil {
		return nil, err
	}
	p := &Poller{cfg: cfg, cps: cps, busy: make(chan struct{}, 1)}
	for _, name := range cfg.Kinds {
		k, _ := kindOf(name)
		p.kinds = append(p.kinds, k)
	}
	return p, nil
}

// Tenant is the tenant the poller publishes for.
func (p *Poller) Tenant() string { return p.cfg.Tenant }

// Result is what one poll did, per kind (KindJob, …).
type Result struct {
	Kinds map[string]KindResult `json:"kinds"`
}

// KindResult is what one walk of one kind did. Once the walk succeeded,
// Seen == Published + Duplicates + Skipped.
type KindResult struct {
	// Entity is the normalized entity name of the kind's events (work_order, …).
	Entity string `json:"entity"`
	// From is where the walk started: it read entities updated strictly after From.
	From time.Time `json:"from"`
	// Seen counts the entity versions (id, updated) the walk read, each once.
	Seen int `json:"seen"`
	// Published counts the events JetStream stored; Duplicates the events it had already
	// stored within its duplicate window (an earlier walk published them).
	Published  int `json:"published"`
	Duplicates int `json:"duplicates"`
	// Skipped counts entities that cannot make an event (no id or no updated time).
	Skipped int `json:"skipped,omitempty"`
	// Throttled counts 429 answers waited out; Retries other transient errors retried.
	Throttled int `json:"throttled,omitempty"`
	Retries   int `json:"retries,omitempty"`
	// Checkpoint is the kind's checkpoint after the walk; zero when it has none.
	Checkpoint time.Time `json:"checkpoint,omitzero"`
	// Error is why the walk failed; empty when it succeeded.
	Error string `json:"error,omitempty"`
}

// Total sums the counts of every kind.
func (r Result) Total() KindResult {
	var t KindResult
	for _, k := range r.Kinds {
		t.Seen += k.Seen
		t.Published += k.Published
		t.Duplicates += k.Duplicates
		t.Skipped += k.Skipped
		t.Throttled += k.Throttled
		t.Retries += k.Retries
	}
	return t
}

// PollOnce walks every configured kind once, publishing an event for each entity version
// it reads, and advances each kind's checkpoint once all of that kind's events are
// acknowledged.
//
// With a zero since each kind starts Overlap before its checkpoint (InitialLookback before
// now if it has none). A non-zero since re-polls from that time instead — the way to catch
// up after a known outage; the checkpoint then moves only if since is not after it, so a
// short re-poll window never makes a walk skip the gap before it.
//
// A kind that fails does not stop the others: the error (all of them, joined, each naming
// its kind) comes back with the Result, whose failed kinds carry Error and kept their
// checkpoints. Only when JetStream does not acknowledge an event within the retry budget
// does the poll stop there; the kinds after it are left out of the Result. Permanent API errors (a 400, a 401 after a fresh token, an answer that is not
// ServiceTrade's) fail a kind at once; transient ones are retried (see RetryConfig). When ctx
// ends, PollOnce returns ctx's error.
func (p *Poller) PollOnce(ctx context.Context, since time.Time) (Result, error) {
	res := Result{Kinds: map[string]KindResult{}}
	select {
	case p.busy <- struct{}{}:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	defer func() { <-p.busy }()
	var errs []error
	for _, k := range p.kinds {
		kr, err := p.pollKind(ctx, k, since)
		if err != nil {
			kr.Error = err.Error()
			errs = append(errs, fmt.Errorf("poller: %s: %w", k.name, err))
		}
		res.Kinds[k.name] = kr
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if errors.Is(err, errPublish) {
			break // JetStream is not taking events: the other kinds would fail the same way
		}
	}
	return res, errors.Join(errs...)
}

// Run polls at once and then every interval until ctx ends, and returns nil then. A poll
// that fails is logged and the next one starts from the checkpoints it left; a poll that
// overruns the interval is followed at once by the next.
func (p *Poller) Run(ctx context.Context, interval time.Duration) error {
	return p.RunFrom(ctx, time.Time{}, interval)
}

// RunFrom is Run whose first poll re-reads from since instead of from the checkpoints
// (zero: from the checkpoints), to catch up after an outage.
func (p *Poller) RunFrom(ctx context.Context, since time.Time, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("poller: interval %s: must be positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	trigger := "scheduled"
	if !since.IsZero() {
		trigger = "since " + since.UTC().Format(time.RFC3339)
	}
	for {
		res, err := p.PollOnce(ctx, since)
		if ctx.Err() != nil {
			return nil
		}
		p.logResult(res, err, trigger)
		since, trigger = time.Time{}, "scheduled"
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Checkpoint returns kind's checkpoint: the newest update time a completed walk read and
// had acknowledged. ok is false when the kind has none yet.
func (p *Poller) Checkpoint(ctx context.Context, kind string) (at time.Time, ok bool, err error) {
	return p.cps.get(ctx, checkpointKey(p.cfg.Tenant, kind))
}

func (p *Poller) logResult(res Result, err error, trigger string) {
	log := p.cfg.Logger
	ev := log.Info()
	if err != nil {
		ev = log.Error().Err(err)
	}
	d := zerolog.Dict()
	for _, name := range slices.Sorted(maps.Keys(res.Kinds)) {
		k := res.Kinds[name]
		d = d.Dict(name, zerolog.Dict().Int("seen", k.Seen).Int("published", k.Published).
			Int("duplicates", k.Duplicates).Int("throttled", k.Throttled).Time("checkpoint", k.Checkpoint))
	}
	ev.Str("tenant", p.cfg.Tenant).Str("trigger", trigger).Dict("kinds", d).Msg("poll done")
}
