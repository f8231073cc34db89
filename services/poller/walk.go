package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
)

// Kinds of ServiceTrade resources the poller walks, by their API names.
const (
	KindJob      = "job"      // events of entity work_order
	KindAsset    = "asset"    // asset
	KindLocation = "location" // location
	KindClock    = "clock"    // time_entry (clock events)
)

// DefaultKinds are the kinds walked unless Config.Kinds says otherwise: every kind a
// consumer service applies.
func DefaultKinds() []string { return []string{KindJob, KindAsset, KindLocation, KindClock} }

// Source is the part of ServiceTrade's API the poller reads; *servicetrade.Client
// implements it. Each walk must visit entities in the order served (by update time, then
// id) and return fn's error as it is.
type Source interface {
	ListJobs(ctx context.Context, opts servicetrade.ListOptions, fn func(servicetrade.Job) error) error
	ListAssets(ctx context.Context, opts servicetrade.ListOptions, fn func(servicetrade.Asset) error) error
	ListLocations(ctx context.Context, opts servicetrade.ListOptions, fn func(servicetrade.Location) error) error
	ListClockEvents(ctx context.Context, opts servicetrade.ListOptions, fn func(servicetrade.ClockEvent) error) error
}

// polled is one entity as a walk reads it; data is its JSON.
type polled struct {
	id, created, updated int64
	data                 []byte
}

// kind is a walkable resource and the entity its events are about.
type kind struct {
	name, entity string
	walk         func(ctx context.Context, src Source, opts servicetrade.ListOptions, fn func(polled) error) error
}

func kindOf(name string) (kind, bool) {
	k := kind{name: name, entity: event.NormalizeEntity(name)}
	switch name {
	case KindJob:
		k.walk = func(ctx context.Context, src Source, o servicetrade.ListOptions, fn func(polled) error) error {
			return src.ListJobs(ctx, o, visit(fn, func(v servicetrade.Job) (int64, int64, int64) { return v.ID, v.Created, v.Updated }))
		}
	case KindAsset:
		k.walk = func(ctx context.Context, src Source, o servicetrade.ListOptions, fn func(polled) error) error {
			return src.ListAssets(ctx, o, visit(fn, func(v servicetrade.Asset) (int64, int64, int64) { return v.ID, v.Created, v.Updated }))
		}
	case KindLocation:
		k.walk = func(ctx context.Context, src Source, o servicetrade.ListOptions, fn func(polled) error) error {
			return src.ListLocations(ctx, o, visit(fn, func(v servicetrade.Location) (int64, int64, int64) { return v.ID, v.Created, v.Updated }))
		}
	case KindClock:
		k.walk = func(ctx context.Context, src Source, o servicetrade.ListOptions, fn func(polled) error) error {
			return src.ListClockEvents(ctx, o, visit(fn, func(v servicetrade.ClockEvent) (int64, int64, int64) { return v.ID, v.Created, v.Updated }))
		}
	default:
		return kind{}, false
	}
	return k, true
}

// visit adapts fn to a typed walk. The entity is encoded back to JSON with encoding/json:
// its int64 ids stay exact (they were never float64s).
func visit[T any](fn func(polled) error, key func(T) (id, created, updated int64)) func(T) error {
	return func(v T) error {
		data, err := json.Marshal(v)
		if err != nil {
			return failure.Permanent(fmt.Errorf("encoding the entity: %w", err))
		}
		id, created, updated := key(v)
		return fn(polled{id: id, created: created, updated: updated, data: data})
	}
}

// errPageEnd stops a list walk at the end of a full page, so that the next page is asked
// for by time rather than by offset.
var errPageEnd = errors.New("poller: end of a page")

// version is one state of one entity.
type version struct{ id, updated int64 }

// walker is one walk of one kind.
type walker struct {
	p        *Poller
	k        kind
	res      *KindResult
	pub      *publisher
	received time.Time
	seen     map[version]struct{} // versions taken, from the current resumption point on
	newest   int64                // the newest update time taken
	progress time.Time            // when the walk last took an entity or finished a page
}

// pollKind walks kind k from since (see PollOnce) and moves its checkpoint.
func (p *Poller) pollKind(ctx context.Context, k kind, since time.Time) (KindResult, error) {
	res := KindResult{Entity: k.entity}
	key := checkpointKey(p.cfg.Tenant, k.name)
	cp, hasCP, err := p.cps.get(ctx, key)
	if err != nil {
		return res, err
	}
	if hasCP {
		res.Checkpoint = cp
	}
	start := p.cfg.Now()
	from := since
	switch {
	case !from.IsZero():
	case hasCP:
		from = cp.Add(-p.cfg.Overlap)
	default:
		from = start.Add(-p.cfg.InitialLookback)
	}
	from = time.Unix(from.Unix(), 0).UTC() // the API compares whole seconds
	res.From = from

	w := &walker{p: p, k: k, res: &res, received: start, seen: map[version]struct{}{}}
	w.pub = &publisher{js: p.cfg.JetStream, retry: p.cfg.Retry, res: &res, log: p.cfg.Logger}
	if err := w.run(ctx, from); err != nil {
		return res, err
	}
	if err := w.pub.settle(ctx, len(w.pub.inFlight)); err != nil {
		return res, err
	}
	// Every event is acknowledged: the checkpoint may pass them. It never passes the walk's
	// start (an entity stamped in the future would otherwise hide the present), never
	// moves back, and does not move when since was after it or after now (the gap would be
	// skipped).
	if from.After(start) || hasCP && from.After(cp) {
		return res, nil
	}
	to := min(max(w.newest, from.Unix()), start.Unix())
	if hasCP && to <= cp.Unix() {
		return res, nil
	}
	at, err := p.cps.advance(ctx, key, to)
	if err != nil {
		return res, fmt.Errorf("all events acknowledged, but the checkpoint was not moved: %w", err)
	}
	res.Checkpoint = at
	return res, nil
}

// maxResumeLimit caps the page size of a request that resumes a walk: the simulator's
// cap, and ServiceTrade documents none.
const maxResumeLimit = 500

// run reads every entity updated after from, page by page: after a full page it asks
// again for what was updated since the second of the page's last entity (ServiceTrade
// pages by offset, so a page asked for by number shifts under changes made during the walk
// and can skip an entity). A failed request is asked again the same way, after the 429's
// Retry-After or a backoff, so the walk resumes at the page that failed. Entities that
// share that second and were already taken are asked for again — in a larger page, so
// that a walk through many entities of one second still progresses — and skipped.
func (w *walker) run(ctx context.Context, from time.Time) error {
	cfg := w.p.cfg
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = cfg.Retry.InitialInterval, cfg.Retry.MaxInterval, 0
	b.Reset()
	after, limit := from, cfg.PageSize
	w.progress = time.Now()
	for {
		var n int
		var first, last int64
		err := w.k.walk(ctx, cfg.Source, servicetrade.ListOptions{UpdatedAfter: after, Limit: limit}, func(e polled) error {
			n++
			if (n-1)%limit == 0 {
				first = e.updated
			}
			if err := w.take(ctx, e); err != nil {
				return err
			}
			// A full page whose entities span more than one second ends here; one within a
			// single second cannot be resumed by time, and the walk reads on by offset.
			if n%limit == 0 && e.updated > first {
				last = e.updated
				return errPageEnd
			}
			return nil
		})
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errPageEnd):
			after, limit = w.resumeAt(last)
			w.progress = time.Now()
			b.Reset()
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errPublish), failure.IsPermanent(err):
			return err
		}
		wait := failure.RetryAfterOf(err)
		if wait > 0 {
			w.res.Throttled++
		} else {
			wait = b.NextBackOff()
			w.res.Retries++
		}
		if stalled := time.Since(w.progress); stalled+wait > cfg.Retry.Budget {
			return fmt.Errorf("no progress for %s, giving up: %w", stalled.Round(time.Second), err)
		}
		cfg.Logger.Debug().Str("tenant", cfg.Tenant).Str("kind", w.k.name).Dur("wait", wait).Err(err).Msg("poller: list failed, retrying")
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		if w.newest > 0 {
			after, limit = w.resumeAt(w.newest)
		}
	}
}

// resumeAt returns the UpdatedAfter and page size that ask again for everything updated at
// or after updated (every entity before it was taken) and for a page more than the
// versions of that second already taken, which it keeps while it forgets the older ones.
func (w *walker) resumeAt(updated int64) (time.Time, int) {
	for v := range w.seen {
		if v.updated < updated {
			delete(w.seen, v)
		}
	}
	limit := w.p.cfg.PageSize + len(w.seen)
	limit = max(w.p.cfg.PageSize, min(limit, maxResumeLimit))
	return time.Unix(updated-1, 0).UTC(), limit
}

// take publishes an event for e unless this walk already did for the same version.
func (w *walker) take(ctx context.Context, e polled) error {
	v := version{e.id, e.updated}
	if _, ok := w.seen[v]; ok {
		return nil
	}
	w.seen[v] = struct{}{}
	w.res.Seen++
	w.progress = time.Now()
	if e.id <= 0 || e.updated <= 0 {
		w.res.Skipped++
		w.p.cfg.Logger.Warn().Str("tenant", w.p.cfg.Tenant).Str("kind", w.k.name).Int64("id", e.id).Int64("updated", e.updated).
			Msg("poller: entity without id or update time skipped")
		return nil
	}
	w.newest = max(w.newest, e.updated)
	m, err := newMessage(w.p.cfg.Tenant, w.k.entity, e, w.received)
	if err != nil {
		return failure.Permanent(err)
	}
	return w.pub.publish(ctx, m)
}

// sleep waits d, or returns ctx's error if ctx ends first.
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
