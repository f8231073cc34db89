package consumer

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
)

// SkipDeleted acknowledges, instead of dead-lettering, an event whose entity the source no
// longer has (404 or 410) when the stream already holds a later "deleted" event for that
// entity: webhooks are thin, so an update is fetched after the fact, and an entity deleted
// since then is not a failure — the deletion event will be applied in its turn. A 404 for an
// entity with no deletion on record stays a permanent error.
func SkipDeleted(js jetstream.JetStream, stream string) Middleware {
	// stream is the EVENTS stream, also for redriven dead letters, read from DLQ.
	return func(next BatchHandler) BatchHandler {
		return func(ctx context.Context, batch []*Message) []error {
			errs := next(ctx, batch)
			for i, err := range errs {
				if st := failure.StatusOf(err); (st != http.StatusNotFound && st != http.StatusGone) || !failure.IsPermanent(err) {
					continue
				}
				m := batch[i]
				if m.Event.Action == "deleted" || m.Meta == nil {
					continue
				}
				subj, serr := event.Subject(m.Event.Tenant, m.Event.Entity, m.Event.EntityID, "deleted")
				if serr != nil {
					continue
				}
				s, serr := js.Stream(ctx, stream)
				if serr != nil {
					continue
				}
				last, serr := s.GetLastMsgForSubject(ctx, subj)
				if serr == nil && last.Sequence > m.EventsSequence() {
					errs[i] = nil
				}
			}
			return errs
		}
	}
}
