package consumer

import (
	"context"
	"fmt"

	"github.com/fieldstream/fieldstream/pkg/failure"
)

// Idempotent keeps events the ledger has seen from the handler: an event already applied
// (redelivered, replayed or re-published) gets ErrAlreadyApplied, and an event older than
// one already applied to the same entity (an older update never overwrites a newer one)
// gets ErrSuperseded; the consumer acknowledges both without applying them. Events the
// handler applies are recorded. A ledger that cannot be read is a transient error: the
// event waits rather than risks applying twice. The ledger is read and written for the
// messages of a batch concurrently: its round trips, not the sinks, bound a consumer's rate.
func Idempotent(l *Ledger) Middleware {
	return func(next BatchHandler) BatchHandler {
		return func(ctx context.Context, batch []*Message) []error {
			errs := make([]error, len(batch))
			apply := make([]bool, len(batch))
			ids := make([]string, 0, len(batch))
			for i, m := range batch {
				if l.AppliedSequence(m.EventsSequence()) && (m.Replay == nil || !m.Replay.Force) {
					errs[i] = ErrAlreadyApplied
					continue
				}
				ids = append(ids, m.ID())
			}
			applied, err := l.AppliedMany(ctx, ids)
			if err != nil {
				for i := range batch {
					if errs[i] == nil {
						errs[i] = failure.Transient(fmt.Errorf("ledger: %w", err), 0)
					}
				}
				return errs
			}
			forEach(len(batch), func(i int) {
				m := batch[i]
				if errs[i] != nil {
					return
				}
				if applied[m.ID()] && (m.Replay == nil || !m.Replay.Force) {
					errs[i] = ErrAlreadyApplied
					return
				}
				hint := m.ID()
				if err := m.decodeEvent(); err != nil {
					errs[i] = err
					return
				}
				if m.Event.ID != hint && (m.Replay == nil || !m.Replay.Force) {
					// The message id was not the event's (a re-publication): ask again.
					done, err := l.Applied(ctx, m.Event.ID)
					if err != nil {
						errs[i] = failure.Transient(fmt.Errorf("ledger: %w", err), 0)
						return
					}
					if done {
						errs[i] = ErrAlreadyApplied
						return
					}
				}
				if m.Replay != nil && m.Replay.Force {
					apply[i] = true // an operator's forced replay: apply whatever the ledger says
					return
				}
				stale, err := l.claim(ctx, m)
				switch {
				case err != nil:
					errs[i] = failure.Transient(fmt.Errorf("ledger: %w", err), 0)
				case stale:
					errs[i] = ErrSuperseded
				default:
					apply[i] = true
				}
			})
			var todo []int
			for i, ok := range apply {
				if ok {
					todo = append(todo, i)
				}
			}
			if len(todo) == 0 {
				return errs
			}
			res := next(ctx, subset(batch, todo))
			forEach(len(todo), func(k int) {
				i := todo[k]
				errs[i] = res[k]
				if res[k] == nil {
					if err := l.MarkApplied(ctx, batch[i].ID(), batch[i].EventsSequence()); err != nil {
						// Applied but not recorded: a redelivery would apply it again
						// unless the sink is idempotent by event id, which ours are.
						errs[i] = failure.Transient(fmt.Errorf("ledger: record applied: %w", err), 0)
					}
				}
			})
			l.flushSequences(ctx)
			return errs
		}
	}
}
