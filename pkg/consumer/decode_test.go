package consumer_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/natstest"
)

func TestDecode(t *testing.T) {
	e1 := assetEvent("e1", 1, "updated", t0, "m1")
	tests := []struct {
		name string
		msg  *nats.Msg // delivered from EVENTS
		// handBuilt: the Message is built by hand, with its Event, instead of delivered.
		handBuilt   bool
		idBefore    string // Message.ID before Decode
		wantID      string // Message.ID after
		wantClass   failure.Class
		wantHandled bool
	}{
		{name: "a CloudEvent", msg: e1, idBefore: "m1", wantID: "e1", wantHandled: true},
		{name: "the headers name the event", msg: assetEvent("e1", 1, "updated", t0, ""), idBefore: "e1", wantID: "e1", wantHandled: true},
		{name: "no id in the headers", msg: &nats.Msg{Subject: e1.Subject, Data: e1.Data}, wantID: "e1", wantHandled: true},
		{name: "not a CloudEvent", msg: &nats.Msg{Subject: e1.Subject, Data: []byte(`{"id":`), Header: nats.Header{jetstream.MsgIDHeader: {"m1"}}},
			idBefore: "m1", wantClass: failure.ClassPermanent},
		{name: "decoded before", handBuilt: true, idBefore: "e1", wantID: "e1", wantHandled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m *consumer.Message
			if tt.handBuilt {
				m = &consumer.Message{Event: event.CloudEvent{ID: "e1"}}
			} else {
				m = newHarness(t).deliver(tt.msg)
				if m.Event.ID != "" {
					t.Fatalf("delivered decoded: %+v", m.Event)
				}
			}
			if got := m.ID(); got != tt.idBefore {
				t.Errorf("ID before decoding %q, want %q", got, tt.idBefore)
			}
			sink := &recorder{}
			err := consumer.Decode()(sink.handle)(context.Background(), []*consumer.Message{m})[0]
			if tt.wantClass != "" {
				if err == nil || failure.ClassOf(err) != tt.wantClass || !strings.Contains(err.Error(), "undecodable event") {
					t.Errorf("error %v, want a %s failure", err, tt.wantClass)
				}
			} else if err != nil {
				t.Errorf("error %v", err)
			}
			var want []string
			if tt.wantHandled {
				want = []string{tt.wantID}
			}
			if !slices.Equal(sink.seen, want) {
				t.Errorf("the handler saw %q, want %q", sink.seen, want)
			}
			if tt.wantHandled && m.ID() != tt.wantID {
				t.Errorf("ID after decoding %q, want %q", m.ID(), tt.wantID)
			}
		})
	}
}

// TestDecodePassesOnOnlyCloudEvents: in a batch, an undecodable message fails alone.
func TestDecodePassesOnOnlyCloudEvents(t *testing.T) {
	h := newHarness(t)
	h.store(assetEvent("e1", 1, "updated", t0, ""))
	h.store(&nats.Msg{Subject: "events.t.asset.2.updated", Data: []byte("not json")})
	h.store(assetEvent("e3", 3, "updated", t0, ""))
	sink := &recorder{}
	errs := consumer.Decode()(sink.handle)(context.Background(), h.deliveries("EVENTS", 1, 3))
	if errs[0] != nil || !failure.IsPermanent(errs[1]) || errs[2] != nil {
		t.Errorf("errors %v, want the second alone to fail, permanently", errs)
	}
	if !slices.Equal(sink.seen, []string{"e1", "e3"}) {
		t.Errorf("the handler saw %q", sink.seen)
	}
}

// TestUndecodableEventsAreDeadLettered: the pipeline dead-letters an envelope that is not a
// CloudEvent, whether or not its headers name an id, and applies its neighbours.
func TestUndecodableEventsAreDeadLettered(t *testing.T) {
	h := newHarness(t)
	s := newSink(nil)
	h.run("c", s, consumer.Config{})
	h.store(&nats.Msg{Subject: "events.t.asset.1.updated", Data: []byte("{"), Header: nats.Header{jetstream.MsgIDHeader: {"junk"}}})
	h.store(&nats.Msg{Subject: "events.t.asset.2.updated", Data: []byte("[]")})
	h.publish("good", 3, "updated", t0, "")
	natstest.Eventually(t, 5*time.Second, "two dead letters", func() bool { return len(h.dlq()) == 2 })
	natstest.Eventually(t, 5*time.Second, "settled", h.settled("c"))
	for _, d := range h.dlq() {
		if d.Header.Get(consumer.HeaderDLQClass) != consumer.ClassPermanent || !strings.HasPrefix(d.Header.Get(consumer.HeaderDLQError), "undecodable event") {
			t.Errorf("dead letter %s: %v", d.Subject, d.Header)
		}
	}
	if s.total() != 1 || s.count("good") != 1 {
		t.Errorf("applied %v, want good once", s.applied)
	}
}
