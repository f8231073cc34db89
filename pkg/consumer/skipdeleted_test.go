package consumer_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
)

func TestSkipDeleted(t *testing.T) {
	gone := func(status int) error {
		return failure.FromHTTP("GET", "https://api.servicetrade.com/api/asset/7", status, http.Header{}, "")
	}
	notFound, goneForGood, unavailable := gone(http.StatusNotFound), gone(http.StatusGone), gone(http.StatusServiceUnavailable)
	transientNotFound := failure.Transient(&failure.HTTPStatusError{Method: "GET", URL: "/asset/7", Status: http.StatusNotFound}, 0)
	tests := []struct {
		name   string
		action string // of the message; "updated" if empty
		// deleted: EVENTS holds the deletion of the message's entity, at sequence 2; the
		// message is at sequence seq.
		deleted bool
		seq     uint64
		err     error // the handler's
		want    error // nil: acknowledged
	}{
		{name: "404 for an entity deleted since", deleted: true, seq: 1, err: notFound, want: nil},
		{name: "410 for an entity deleted since", deleted: true, seq: 1, err: goneForGood, want: nil},
		{name: "404 with no deletion on record", seq: 1, err: notFound, want: notFound},
		{name: "404 for an entity deleted before the event", deleted: true, seq: 3, err: notFound, want: notFound},
		{name: "404 for the deletion itself", action: "deleted", deleted: true, seq: 1, err: notFound, want: notFound},
		{name: "a transient 404", deleted: true, seq: 1, err: transientNotFound, want: transientNotFound},
		{name: "503", deleted: true, seq: 1, err: unavailable, want: unavailable},
		{name: "already applied", deleted: true, seq: 1, err: consumer.ErrAlreadyApplied, want: consumer.ErrAlreadyApplied},
		{name: "superseded", deleted: true, seq: 1, err: consumer.ErrSuperseded, want: consumer.ErrSuperseded},
		{name: "applied", deleted: true, seq: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.publish("other", 99, "updated", t0, "")
			if tt.deleted {
				h.publish("deletion", 7, "deleted", t0, "")
			}
			action := tt.action
			if action == "" {
				action = "updated"
			}
			m := &consumer.Message{
				Event: event.CloudEvent{ID: "e", Tenant: "t", Entity: "asset", EntityID: "7", Action: action},
				Meta:  &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: tt.seq}},
			}
			handler := func(context.Context, []*consumer.Message) []error { return []error{tt.err} }
			err := consumer.SkipDeleted(h.js, "EVENTS")(handler)(context.Background(), []*consumer.Message{m})[0]
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}
