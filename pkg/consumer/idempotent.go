package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
)

// Idempotent keeps events the ledger has seen from the handler: an event already applied
// (redelivered, replayed or re-published) gets ErrAlreadyApplied, and an event older than
// one already applied to the same entity (an older update never overwrites a newer one)
// gets ErrSuperseded; the consumer acknowledges both without applying them. An operator's
// forced replay is applied whatever the ledger says. Events the handler applies are
// recorded. A ledger that cannot be read is a transient error: the event waits rather than
// risks applying twice. The ledger is read and written for the messages of a batch
// concurrently: its round trips, not the sinks, bound a consumer's rate.
//
// An event is looked up by the id its headers carry (Message.ID) before its envelope is
// decoded, so a replay of applied events costs no decoding; what Idempotent hands next is
// decoded.
func Idempotent(l *Ledger) Middleware {
	return func(next BatchHandler) BatchHandler {
		return func(ctx context.Context, batch []*Message) []error {
			// errs[i] stays nil while message i may still be applied.
			errs := make([]error, len(batch))
			skipAppliedSequences(l, batch, errs)
			if err := skipAppliedIDs(ctx, l, batch, errs); err != nil {
				return errs
			}
			forEach(len(batch), func(i int) {
				if errs[i] != nil {
					return
				}
				m := batch[i]
				errs[i] = decodeAndRecheck(ctx, l, m)
				if errs[i] == nil && !forcedReplay(m) {
					errs[i] = claimVersion(ctx, l, m)
				}
			})
			todo := pending(errs)
			if len(todo) == 0 {
				return errs
			}
			passOn(ctx, next, batch, todo, errs)
			recordApplied(ctx, l, batch, todo, errs)
			return errs
		}
	}
}

// skipAppliedSequences settles, without a round trip, the messages whose EVENTS sequence the
// ledger knows it applied.
func skipAppliedSequences(l *Ledger, batch []*Message, errs []error) {
	for i, m := range batch {
		if !forcedReplay(m) && l.AppliedSequence(m.EventsSequence()) {
			errs[i] = ErrAlreadyApplied
		}
	}
}

// skipAppliedIDs settles the messages whose event id the ledger records as applied, asking
// about the whole batch at once. If the ledger cannot be read, every message not settled
// yet gets a transient error, which is also returned.
func skipAppliedIDs(ctx context.Context, l *Ledger, batch []*Message, errs []error) error {
	ids := make([]string, 0, len(batch))
	for i, m := range batch {
		if errs[i] == nil && m.ID() != "" {
			ids = append(ids, m.ID())
		}
	}
	applied, err := l.AppliedMany(ctx, ids)
	if err != nil {
		err = ledgerError(err)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return err
	}
	for i, m := range batch {
		if errs[i] == nil && !forcedReplay(m) && applied[m.ID()] {
			errs[i] = ErrAlreadyApplied
		}
	}
	return nil
}

// decodeAndRecheck decodes m's envelope and, unless m was already looked up by the event id
// in it, asks the ledger about that id: the message id may not be the event's (a
// re-publication under a new message id), or the headers may name none.
func decodeAndRecheck(ctx context.Context, l *Ledger, m *Message) error {
	lookedUp := m.ID()
	if err := m.decodeEvent(); err != nil {
		return err
	}
	if (lookedUp != "" && m.Event.ID == lookedUp) || forcedReplay(m) {
		return nil
	}
	applied, err := l.Applied(ctx, m.Event.ID)
	switch {
	case err != nil:
		return ledgerError(err)
	case applied:
		return ErrAlreadyApplied
	}
	return nil
}

// claimVersion makes m the newest version of its entity, or returns ErrSuperseded if a
// newer one was claimed (see Ledger.claim).
func claimVersion(ctx context.Context, l *Ledger, m *Message) error {
	stale, err := l.claim(ctx, m)
	switch {
	case err != nil:
		return ledgerError(err)
	case stale:
		return ErrSuperseded
	}
	return nil
}

// recordApplied records the messages at idx that the handler applied, then stores the
// applied sequences. What was applied is recorded even while the consumer stops (ctx
// cancelled by a drain), within recordWithin. A message applied but not recorded gets a
// transient error: its redelivery applies it again, which the sinks, idempotent by event
// id, turn away.
func recordApplied(ctx context.Context, l *Ledger, batch []*Message, idx []int, errs []error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordWithin)
	defer cancel()
	forEach(len(idx), func(k int) {
		i := idx[k]
		if errs[i] != nil {
			return
		}
		if err := l.MarkApplied(ctx, batch[i].ID(), batch[i].EventsSequence()); err != nil {
			errs[i] = failure.Transient(fmt.Errorf("ledger: record applied: %w", err), 0)
		}
	})
	l.flushSequences(ctx)
}

// recordWithin bounds the ledger writes that record a batch's applied events.
const recordWithin = 10 * time.Second

// forcedReplay reports whether m is an operator's forced replay, which is applied whatever
// the ledger says.
func forcedReplay(m *Message) bool { return m.Replay != nil && m.Replay.Force }

// ledgerError is a failure to read or write the ledger: transient, the message waits.
func ledgerError(err error) error { return failure.Transient(fmt.Errorf("ledger: %w", err), 0) }
