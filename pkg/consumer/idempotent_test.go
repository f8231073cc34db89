package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
)

func TestIdempotent(t *testing.T) {
	webhook := func(id string, at time.Time) *nats.Msg { return assetEvent(id, 1, "updated", at, "") }
	polled := func(id string, at time.Time) *nats.Msg {
		m := webhook(id, at)
		m.Header.Set(event.HeaderOrigin, event.OriginPoll)
		return m
	}
	withoutID := func(m *nats.Msg) *nats.Msg { m.Header.Del(jetstream.MsgIDHeader); return m }
	e1 := webhook("e1", t0)
	errSink := failure.Transient(errors.New("sink unavailable"), 0)
	tests := []struct {
		name string
		// before are stored on EVENTS (e1 at sequence 1) and applied, in order, before msg.
		before []*nats.Msg
		msg    *nats.Msg
		// noSequences: the ledger does not track EVENTS sequences. ledgerGone: its bucket is
		// deleted when msg arrives.
		noSequences, ledgerGone bool
		sinkErr                 error // what the handler returns for msg
		want                    error // nil: applied
		wantClass               failure.Class
		wantHandled             string // the event id the handler saw decoded; "": none
	}{
		{name: "a new event", msg: e1, wantHandled: "e1"},
		{name: "a newer change of an applied entity", before: []*nats.Msg{e1}, msg: webhook("e2", t0.Add(time.Minute)), wantHandled: "e2"},
		{name: "a replay of an applied sequence", before: []*nats.Msg{e1}, msg: replayOf(e1, 1, false), want: consumer.ErrAlreadyApplied},
		{name: "an applied sequence needs no ledger read", before: []*nats.Msg{e1}, ledgerGone: true, msg: replayOf(e1, 1, false), want: consumer.ErrAlreadyApplied},
		{name: "an applied id, sequences untracked", noSequences: true, before: []*nats.Msg{e1}, msg: replayOf(e1, 1, false), want: consumer.ErrAlreadyApplied},
		{name: "an applied event under another message id", before: []*nats.Msg{e1}, msg: assetEvent("e1", 1, "updated", t0, "republished"), want: consumer.ErrAlreadyApplied},
		{name: "an applied event whose headers name no id", before: []*nats.Msg{e1}, msg: withoutID(webhook("e1", t0)), want: consumer.ErrAlreadyApplied},
		{name: "a new event whose headers name no id", msg: withoutID(webhook("e1", t0)), wantHandled: "e1"},
		{name: "a forced replay of an applied event", before: []*nats.Msg{e1}, msg: replayOf(e1, 1, true), wantHandled: "e1"},
		{name: "an older change than one applied", before: []*nats.Msg{webhook("v2", t0.Add(time.Minute))}, msg: webhook("v1", t0), want: consumer.ErrSuperseded},
		{name: "a polled event restating the applied change", before: []*nats.Msg{webhook("hook", t0)}, msg: polled("poll", t0), want: consumer.ErrSuperseded},
		{name: "a polled event newer than the applied change", before: []*nats.Msg{webhook("hook", t0)}, msg: polled("poll", t0.Add(time.Second)), wantHandled: "poll"},
		{name: "a failure of the handler", msg: e1, sinkErr: errSink, want: errSink, wantHandled: "e1"},
		{name: "a ledger that cannot be read", ledgerGone: true, msg: e1, wantClass: failure.ClassTransient},
		{name: "an envelope that is not a CloudEvent", msg: &nats.Msg{Subject: "events.t.asset.1.updated", Data: []byte("{"),
			Header: nats.Header{jetstream.MsgIDHeader: {"junk"}}}, wantClass: failure.ClassPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			l := openLedger(t, h, !tt.noSequences)
			sink := &recorder{}
			apply := consumer.Idempotent(l)(sink.handle)
			for _, msg := range tt.before {
				if err := apply(ctx, []*consumer.Message{h.deliver(msg)})[0]; err != nil {
					t.Fatalf("applying %s first: %v", msg.Header.Get(jetstream.MsgIDHeader), err)
				}
			}
			if tt.ledgerGone {
				if err := h.js.DeleteKeyValue(ctx, consumer.LedgerBucket("c")); err != nil {
					t.Fatal(err)
				}
			}
			m := h.deliver(tt.msg)
			sink.seen, sink.err = nil, tt.sinkErr
			err := apply(ctx, []*consumer.Message{m})[0]

			switch {
			case tt.wantClass != "":
				if err == nil || skippedErr(err) || failure.ClassOf(err) != tt.wantClass {
					t.Errorf("error %v, want a %s failure", err, tt.wantClass)
				}
			case !errors.Is(err, tt.want):
				t.Errorf("error %v, want %v", err, tt.want)
			}
			var want []string
			if tt.wantHandled != "" {
				want = []string{tt.wantHandled}
			}
			if !slices.Equal(sink.seen, want) {
				t.Errorf("the handler saw %q, want %q", sink.seen, want)
			}
			if tt.ledgerGone || tt.wantHandled == "" {
				return
			}
			recorded, lerr := l.Applied(ctx, tt.wantHandled)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if recorded != (err == nil) {
				t.Errorf("ledger records %s applied: %v, after error %v", tt.wantHandled, recorded, err)
			}
		})
	}
}

// TestIdempotentBatch: a batch of events applied before and new ones; the ledger is asked
// about the batch at once and the handler gets the new ones, in order.
func TestIdempotentBatch(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	l := openLedger(t, h, true)
	for i := range 40 {
		h.store(assetEvent(fmt.Sprintf("e%d", i), int64(i), "updated", t0, ""))
	}
	sink := &recorder{}
	apply := consumer.Idempotent(l)(sink.handle)
	for i, err := range apply(ctx, h.deliveries("EVENTS", 1, 20)) {
		if err != nil {
			t.Fatalf("first half, message %d: %v", i, err)
		}
	}
	sink.seen = nil
	errs := apply(ctx, h.deliveries("EVENTS", 1, 40)) // a consumer restarted from the start
	var want []string
	for i, err := range errs {
		switch {
		case i < 20 && !errors.Is(err, consumer.ErrAlreadyApplied):
			t.Errorf("e%d, applied before: %v, want ErrAlreadyApplied", i, err)
		case i >= 20 && err != nil:
			t.Errorf("e%d, new: %v", i, err)
		}
		if i >= 20 {
			want = append(want, fmt.Sprintf("e%d", i))
		}
	}
	if !slices.Equal(sink.seen, want) {
		t.Errorf("the handler saw %q, want %q", sink.seen, want)
	}
	for seq := uint64(1); seq <= 40; seq++ {
		if !l.AppliedSequence(seq) {
			t.Errorf("sequence %d not recorded as applied", seq)
		}
	}
}

// openLedger opens the ledger of consumer c, tracking EVENTS sequences if told.
func openLedger(t *testing.T, h *harness, sequences bool) *consumer.Ledger {
	t.Helper()
	ctx := context.Background()
	l, err := consumer.OpenLedger(ctx, h.js, "c", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if sequences {
		events, err := h.js.Stream(ctx, "EVENTS")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.TrackSequences(ctx, events); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// skippedErr reports whether err is an outcome of a message kept from the handler.
func skippedErr(err error) bool {
	return errors.Is(err, consumer.ErrAlreadyApplied) || errors.Is(err, consumer.ErrSuperseded)
}

// TestIdempotentRecordsWhileStopping: an event applied while the consumer is asked to stop
// (its context cancelled by a drain, mid-batch) is still recorded, so that the next start
// does not apply it again.
func TestIdempotentRecordsWhileStopping(t *testing.T) {
	h := newHarness(t)
	l := openLedger(t, h, true)
	ctx, stop := context.WithCancel(context.Background())
	applyThenStop := func(ctx context.Context, batch []*consumer.Message) []error {
		stop() // the drain begins while the sink call is under way
		return make([]error, len(batch))
	}
	m := h.deliver(assetEvent("e1", 1, "updated", t0, ""))
	if err := consumer.Idempotent(l)(applyThenStop)(ctx, []*consumer.Message{m})[0]; err != nil {
		t.Fatalf("applied while stopping: %v, want it recorded", err)
	}
	if ok, err := l.Applied(context.Background(), "e1"); err != nil || !ok {
		t.Fatalf("ledger records e1 applied: %v, %v", ok, err)
	}
}
