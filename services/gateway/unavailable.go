package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// errStoreUnavailable: JetStream is not storing what the gateway publishes — it answers
// nothing (no stream leader during an election; a stream whose store failed, as after an
// ENOSPC) or refuses for want of resources. It is answered 503 with Retry-After, as
// errNotPersisted, whose class it has.
var errStoreUnavailable = errors.New("JetStream is not storing events")

// availability notices when JetStream stops storing and then answers requests at once
// instead of letting each wait its whole answer deadline: under load that would park
// thousands of requests, goroutines and connections for seconds each.
//
// It watches every publish the gateway waits on. When JetStream has acknowledged nothing
// for stallAfter while a publish waited, or refuses one for want of resources (an API
// error of class 5xx, no responders), it trips: every waiting request is answered 503 at
// once (its events may still land; the sender's retry is deduplicated), and the requests
// that follow are answered 503 without publishing — all but one every stallAfter, the
// probe, published as usual. The first acknowledgement, the probe's or a late one, ends
// it. It never turns a refusal into a 2xx: only a publish acknowledged by JetStream is.
type availability struct {
	stallAfter time.Duration
	log        zerolog.Logger
	onChange   func(unavailable bool)

	mu        sync.Mutex
	waiters   map[uint64]context.CancelCauseFunc
	nextID    uint64
	progress  time.Time // the last acknowledgement, or when a publish began waiting with none pending
	tripped   bool
	trippedAt time.Time
	cause     error
	probing   bool      // a probe is in flight
	lastProbe time.Time // when the last probe began
}

func newAvailability(stallAfter time.Duration, log zerolog.Logger, onChange func(bool)) *availability {
	return &availability{stallAfter: stallAfter, log: log, onChange: onChange, waiters: map[uint64]context.CancelCauseFunc{}}
}

// admit returns errStoreUnavailable while tripped, unless this request is to be the probe;
// then probe is true and the caller calls done(probe) when its publish is over.
func (a *availability) admit(now time.Time) (probe bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.tripped {
		return false, nil
	}
	if a.probing || now.Sub(a.lastProbe) < a.stallAfter {
		return false, fmt.Errorf("%w (%v, since %s); answering at once until a publish succeeds", errStoreUnavailable, a.cause, a.trippedAt.UTC().Format(time.RFC3339))
	}
	a.probing, a.lastProbe = true, now
	return true, nil
}

// watch returns ctx, ended with errStoreUnavailable as its cause if JetStream stalls while
// the caller waits, and a func to call once the wait is over.
func (a *availability) watch(ctx context.Context, probe bool) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	a.mu.Lock()
	id := a.nextID
	a.nextID++
	if len(a.waiters) == 0 {
		a.progress = time.Now()
	}
	a.waiters[id] = cancel
	var timer *time.Timer
	timer = time.AfterFunc(a.stallAfter, func() { a.check(&timer) })
	a.mu.Unlock()
	return ctx, func() {
		a.mu.Lock()
		timer.Stop()
		delete(a.waiters, id)
		if probe {
			a.probing = false
		}
		a.mu.Unlock()
		cancel(nil)
	}
}

// check trips if JetStream has acknowledged nothing for stallAfter, or looks again when
// it would have been that long.
func (a *availability) check(timer **time.Timer) {
	a.mu.Lock()
	idle := time.Since(a.progress)
	if idle < a.stallAfter {
		(*timer).Reset(a.stallAfter - idle)
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	a.trip(fmt.Errorf("no acknowledgement for %s", idle.Round(time.Millisecond)), true)
}

// acked records an acknowledgement: JetStream stores again, if it had stopped.
func (a *availability) acked() {
	a.mu.Lock()
	a.progress = time.Now()
	was, since := a.tripped, a.trippedAt
	a.tripped, a.cause = false, nil
	a.mu.Unlock()
	if was {
		a.log.Warn().Dur("unavailable_for", time.Since(since)).Msg("JetStream stores again")
		a.onChange(false)
	}
}

// refused looks at a publish's error and trips if it says JetStream cannot store now.
func (a *availability) refused(err error) {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Code >= 500,
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		a.trip(err, false)
	}
}

// trip answers every waiting request 503 and refuses new ones until a probe succeeds. After
// a stall the first probe waits stallAfter; after a refusal, which JetStream answered at
// once, the next request may probe at once.
func (a *availability) trip(cause error, stalled bool) {
	a.mu.Lock()
	was := a.tripped
	if !was {
		a.tripped, a.trippedAt, a.cause = true, time.Now(), cause
		a.lastProbe = time.Time{}
		if stalled {
			a.lastProbe = time.Now()
		}
	}
	waiters := a.waiters
	a.waiters = map[uint64]context.CancelCauseFunc{}
	a.mu.Unlock()
	for _, cancel := range waiters {
		cancel(fmt.Errorf("%w: %v", errStoreUnavailable, cause))
	}
	if !was {
		a.log.Warn().Err(cause).Int("answered", len(waiters)).Dur("probe_every", a.stallAfter).
			Msg("JetStream is not storing: answering 503 at once until a probe publish succeeds")
		a.onChange(true)
	}
}
