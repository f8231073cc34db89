package servicetrade

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Never is a DuplicateRate or ReorderRate that turns the behaviour off (the zero value
// means the default rate).
const Never = -1.0

// Sender defaults, after ServiceTrade's delivery rules where it has one (domain.md).
const (
	DefaultMaxBatch      = 5
	DefaultConcurrency   = 1
	DefaultTimeout       = 5 * time.Second
	DefaultAttempts      = 3
	DefaultRetryDelay    = time.Second
	DefaultDuplicateRate = 0.02
	DefaultReorderRate   = 0.02
)

const userAgent = "fieldstream-simulator (ServiceTrade webhooks)"

var (
	// ErrDiscarded: every attempt of a delivery failed, so the sender dropped it, as
	// ServiceTrade does. A discarded delivery is lost unless the receiver polls.
	ErrDiscarded = errors.New("servicetrade: delivery discarded")
	// ErrRunning: Run was called while the same Sender was already running.
	ErrRunning = errors.New("servicetrade: sender is already running")
)

// SenderConfig configures a Sender. Zero fields take the default in their comment; only
// URL is required.
type SenderConfig struct {
	// URL is the hook URL deliveries are POSTed to, secret path segment included, such as
	// http://127.0.0.1:8080/hooks/demo/servicetrade/dev-token.
	URL string
	// MoreURLs are the same hook on further gateways: attempts go to URL and MoreURLs in
	// turn, as through a load balancer in front of several gateways, so that a retry
	// usually reaches another gateway than the attempt that failed.
	MoreURLs []string
	// EventsPerSecond is the rate at which Run reports changes (items, not deliveries).
	// 0 means Run sends nothing and only waits for its context to end.
	EventsPerSecond float64
	// MaxBatch is the most items in one delivery; each delivery has 1..MaxBatch. Default 5.
	MaxBatch int
	// Concurrency is how many deliveries Run has in flight at once. Default 1, which keeps
	// deliveries in order but for deliberate reordering.
	Concurrency int
	// Timeout bounds each attempt, reply body included. Default 5s.
	Timeout time.Duration
	// Attempts is how many times a delivery is tried before it is discarded. Default 3.
	Attempts int
	// RetryDelay is the wait before the second attempt; it doubles before each further
	// attempt. Default 1s.
	RetryDelay time.Duration
	// DuplicateRate is the probability that Run sends a delivered delivery a second time,
	// same message id and body, as if the acknowledgement had been lost. Default 0.02;
	// Never (any negative rate) turns it off.
	DuplicateRate float64
	// ReorderRate is the probability that Run holds a delivery back and sends it after the
	// next one. Default 0.02; Never (any negative rate) turns it off.
	ReorderRate float64
	// Seed makes Run's choices (batch sizes, duplicates, reordering) repeatable. Message
	// ids are random regardless.
	Seed int64
	// Client sends the requests. Default: a client of its own on http.DefaultTransport.
	// Its own Timeout, if any, applies on top of Timeout.
	Client *http.Client
	// Logger receives a line per failed attempt (debug), delivery (debug) and discarded
	// delivery (warn). The zero value logs nothing.
	Logger zerolog.Logger
	// OnResult, if set, is called with the Result of every delivery, duplicates included,
	// on the goroutine that made it; with Concurrency > 1 it is called concurrently. It
	// should return quickly: Run waits for it.
	OnResult func(Result)
}

// Validate reports the settings NewSender would reject.
func (c SenderConfig) Validate() error {
	var errs []error
	for _, raw := range append([]string{c.URL}, c.MoreURLs...) {
		if u, err := url.Parse(raw); err != nil {
			errs = append(errs, fmt.Errorf("URL: %w", err))
		} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("URL %q: want an absolute http or https URL", raw))
		}
	}
	if c.EventsPerSecond < 0 || math.IsNaN(c.EventsPerSecond) || math.IsInf(c.EventsPerSecond, 0) {
		errs = append(errs, fmt.Errorf("EventsPerSecond %v: want a finite rate >= 0", c.EventsPerSecond))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxBatch", int64(c.MaxBatch)},
		{"Concurrency", int64(c.Concurrency)},
		{"Attempts", int64(c.Attempts)},
		{"Timeout", int64(c.Timeout)},
		{"RetryDelay", int64(c.RetryDelay)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", f.name))
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"DuplicateRate", c.DuplicateRate},
		{"ReorderRate", c.ReorderRate},
	} {
		if f.v > 1 || math.IsNaN(f.v) {
			errs = append(errs, fmt.Errorf("%s %v: want a probability up to 1, or Never", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

func (c SenderConfig) withDefaults() SenderConfig {
	setDefault(&c.MaxBatch, DefaultMaxBatch)
	setDefault(&c.Concurrency, DefaultConcurrency)
	setDefault(&c.Timeout, DefaultTimeout)
	setDefault(&c.Attempts, DefaultAttempts)
	setDefault(&c.RetryDelay, DefaultRetryDelay)
	setDefault(&c.DuplicateRate, DefaultDuplicateRate)
	setDefault(&c.ReorderRate, DefaultReorderRate)
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	return c
}

// Result is the outcome of one delivery.
type Result struct {
	Delivery  Delivery
	Duplicate bool // this was a deliberate second sending of a delivered delivery
	Attempts  int  // POSTs made
	Status    int  // HTTP status of the last attempt; 0 if it got no reply
	// Answered is when the last attempt's reply came; zero if it got none.
	Answered  time.Time
	Delivered bool // an attempt got a 200–499 reply
	// Err is nil when Delivered. Otherwise it matches ErrDiscarded (and wraps the last
	// attempt's failure), or it is the context's error when the context ended first.
	Err error
}

// Stats are a Sender's counters since it was made. Every delivery ends delivered,
// discarded or canceled, so once none is in flight
// Deliveries == Delivered + Discarded + Canceled.
type Stats struct {
	Deliveries      uint64 // deliveries started, duplicates included
	Attempts        uint64 // POSTs begun (one cut short by a context may not reach the hook)
	Delivered       uint64 // deliveries that got a 200–499 reply
	Discarded       uint64 // deliveries dropped after their last failed attempt
	Canceled        uint64 // deliveries cut short by their context
	DuplicatesSent  uint64 // deliveries that were duplicates of a delivered one
	Reordered       uint64 // deliveries sent after one built later
	EventsDelivered uint64 // items in delivered deliveries
	EventsDiscarded uint64 // items in discarded deliveries
}

// Sender POSTs an Account's changes to a hook URL the way ServiceTrade does. Deliver and
// Stats are safe for concurrent use; Run runs once at a time.
type Sender struct {
	cfg     SenderConfig
	urls    []string
	nextURL atomic.Uint64
	account *Account
	running atomic.Bool
	rng     *rand.Rand // Run's alone, and Run runs once at a time
	seq     atomic.Uint64

	deliveries, attempts, delivered, discarded, canceled atomic.Uint64
	duplicatesSent, reordered                            atomic.Uint64
	eventsDelivered, eventsDiscarded                     atomic.Uint64
}

// NewSender returns a Sender of account's changes per cfg. account may be nil for a
// Sender that only Delivers; Run then fails. It fails if cfg.Validate does.
func NewSender(cfg SenderConfig, account *Account) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("servicetrade: sender config: %w", err)
	}
	s := &Sender{
		cfg:     cfg.withDefaults(),
		urls:    append([]string{cfg.URL}, cfg.MoreURLs...),
		account: account,
		rng:     rand.New(rand.NewPCG(uint64(cfg.Seed), 0xde11e7e5)),
	}
	return s, nil
}

// Stats returns the counters. Each is read atomically, but not all at one instant.
func (s *Sender) Stats() Stats {
	return Stats{
		Deliveries:      s.deliveries.Load(),
		Attempts:        s.attempts.Load(),
		Delivered:       s.delivered.Load(),
		Discarded:       s.discarded.Load(),
		Canceled:        s.canceled.Load(),
		DuplicatesSent:  s.duplicatesSent.Load(),
		Reordered:       s.reordered.Load(),
		EventsDelivered: s.eventsDelivered.Load(),
		EventsDiscarded: s.eventsDiscarded.Load(),
	}
}

// outgoing is a delivery Run has built, with what it decided to do to it.
type outgoing struct {
	delivery  Delivery
	duplicate bool // send it again once delivered
}

// Run sends the account's changes at EventsPerSecond until ctx ends, then waits for the
// deliveries in flight (they end canceled) and returns nil. A delivery held back for
// reordering when ctx ends is never sent. If the hook cannot keep up, Run falls behind and
// then catches up as fast as the hook allows, as ServiceTrade's backlog would. Run returns
// ErrRunning if the Sender is already running, and an error if it has no account.
func (s *Sender) Run(ctx context.Context) error {
	if s.account == nil {
		return errors.New("servicetrade: Run needs a sender with an account")
	}
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	if s.cfg.EventsPerSecond == 0 {
		<-ctx.Done()
		return nil
	}

	queue := make(chan outgoing)
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Go(func() {
			for o := range queue {
				res := s.deliver(ctx, o.delivery, false)
				if res.Delivered && o.duplicate {
					s.deliver(ctx, o.delivery, true)
				}
			}
		})
	}
	s.produce(ctx, queue)
	close(queue)
	wg.Wait()
	return nil
}

// produce builds deliveries on schedule and queues them until ctx ends. A delivery of k
// items is built when the k-th of its items is due, so items, not deliveries, keep the rate.
func (s *Sender) produce(ctx context.Context, queue chan<- outgoing) {
	send := func(o outgoing) bool {
		select {
		case queue <- o:
			return true
		case <-ctx.Done():
			return false
		}
	}
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var scheduled float64 // items built so far
	var held *outgoing
	for {
		k := 1 + s.rng.IntN(s.cfg.MaxBatch)
		due := start.Add(time.Duration((scheduled + float64(k)) / s.cfg.EventsPerSecond * float64(time.Second)))
		timer.Reset(time.Until(due))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		scheduled += float64(k)

		now := time.Now()
		d := NewDelivery(s.account.NextChanges(k, now), now)
		d.Seq = s.seq.Add(1)
		o := outgoing{delivery: d, duplicate: s.chance(s.cfg.DuplicateRate)}
		if held == nil && s.chance(s.cfg.ReorderRate) {
			held = &o
			continue
		}
		if !send(o) {
			return
		}
		if held != nil {
			s.reordered.Add(1)
			if !send(*held) {
				return
			}
			held = nil
		}
	}
}

func (s *Sender) chance(p float64) bool { return p > 0 && s.rng.Float64() < p }

// Deliver POSTs d to the hook URL, retrying as ServiceTrade does: up to Attempts attempts,
// each bounded by Timeout, with RetryDelay (doubling) between them. Any 200–499 reply is
// delivered; a 5xx reply, a timeout or a connection error fails the attempt. It never
// sends duplicates or reorders; Run does. The Result is also passed to OnResult.
func (s *Sender) Deliver(ctx context.Context, d Delivery) Result {
	return s.deliver(ctx, d, false)
}

func (s *Sender) deliver(ctx context.Context, d Delivery, duplicate bool) Result {
	s.deliveries.Add(1)
	if duplicate {
		s.duplicatesSent.Add(1)
	}
	res := Result{Delivery: d, Duplicate: duplicate}
	body, err := d.Body()
	if err != nil {
		res.Err = fmt.Errorf("%w: %w", ErrDiscarded, err)
		return s.finish(res)
	}
	delay := s.cfg.RetryDelay
	var lastErr error
	for attempt := 1; attempt <= s.cfg.Attempts; attempt++ {
		if attempt > 1 {
			err = sleep(ctx, delay)
			delay *= 2
		} else {
			err = ctx.Err()
		}
		if err != nil {
			res.Err = err
			return s.finish(res)
		}
		res.Attempts = attempt
		s.attempts.Add(1)
		res.Status, lastErr = s.post(ctx, body)
		if res.Status != 0 {
			res.Answered = time.Now()
		} else {
			res.Answered = time.Time{}
		}
		if lastErr == nil {
			res.Delivered = true
			return s.finish(res)
		}
		if err := ctx.Err(); err != nil {
			res.Err = err
			return s.finish(res)
		}
		s.cfg.Logger.Debug().Str("message_id", d.MessageID).Int("attempt", attempt).
			Int("status", res.Status).Err(lastErr).Msg("webhook attempt failed")
	}
	res.Err = fmt.Errorf("%w after %d attempts: %w", ErrDiscarded, res.Attempts, lastErr)
	return s.finish(res)
}

// post makes one attempt, at the next URL in turn. It returns the reply's status, and an
// error unless the reply counts as delivered.
func (s *Sender) post(ctx context.Context, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	target := s.urls[(s.nextURL.Add(1)-1)%uint64(len(s.urls))]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Read (a bounded part of) the reply so the connection can be reused; the reply
	// itself means nothing to ServiceTrade.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)); err != nil {
		return resp.StatusCode, fmt.Errorf("reading reply: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 500 {
		return resp.StatusCode, fmt.Errorf("hook answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return resp.StatusCode, nil
}

// finish counts and logs res and hands it to OnResult.
func (s *Sender) finish(res Result) Result {
	n := uint64(len(res.Delivery.Items))
	log := s.cfg.Logger
	switch {
	case res.Delivered:
		s.delivered.Add(1)
		s.eventsDelivered.Add(n)
		log.Debug().Str("message_id", res.Delivery.MessageID).Int("items", len(res.Delivery.Items)).
			Int("attempts", res.Attempts).Int("status", res.Status).Bool("duplicate", res.Duplicate).
			Msg("webhook delivered")
	case errors.Is(res.Err, ErrDiscarded):
		s.discarded.Add(1)
		s.eventsDiscarded.Add(n)
		log.Warn().Str("message_id", res.Delivery.MessageID).Int("items", len(res.Delivery.Items)).
			Int("attempts", res.Attempts).Int("status", res.Status).Err(res.Err).
			Msg("webhook discarded")
	default:
		s.canceled.Add(1)
	}
	if s.cfg.OnResult != nil {
		s.cfg.OnResult(res)
	}
	return res
}

// sleep waits for d, or returns ctx's error if ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
