package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
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
		// replay, if set, re-delivers EVENTS sequence 1 from a replay instead of msg.
		replay *replayOf
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
		{name: "a replay of an applied sequence", before: []*nats.Msg{e1}, replay: &replayOf{}, want: consumer.ErrAlreadyApplied},
		{name: "an applied sequence needs no ledger read", before: []*nats.Msg{e1}, ledgerGone: true, replay: &replayOf{}, want: consumer.ErrAlreadyApplied},
		{name: "an applied id, sequences untracked", noSequences: true, before: []*nats.Msg{e1}, replay: &replayOf{}, want: consumer.ErrAlreadyApplied},
		{name: "an applied event under another message id", before: []*nats.Msg{e1}, msg: assetEvent("e1", 1, "updated", t0, "republished"), want: consumer.ErrAlreadyApplied},
		{name: "an applied event whose headers name no id", before: []*nats.Msg{e1}, msg: withoutID(webhook("e1", t0)), want: consumer.ErrAlreadyApplied},
		{name: "a new event whose headers name no id", msg: withoutID(webhook("e1", t0)), wantHandled: "e1"},
		{name: "a forced replay of an applied event", before: []*nats.Msg{e1}, replay: &replayOf{force: true}, wantHandled: "e1"},
		{name: "a forced replay of a change older than one applied", before: []*nats.Msg{e1, webhook("e2", t0.Add(time.Minute))}, replay: &replayOf{force: true}, want: consumer.ErrSuperseded},
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
			var m *consumer.Message
			if tt.replay != nil {
				m = h.replayOf(1, tt.replay.force)
			} else {
				m = h.deliver(tt.msg)
			}
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
			recorded, lerr := l.AppliedEvent(ctx, m.Subject(), tt.wantHandled)
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

// replayOf says how a replay re-delivers an event.
type replayOf struct{ force bool }

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
	if ok, err := l.AppliedEvent(context.Background(), m.Subject(), "e1"); err != nil || !ok {
		t.Fatalf("ledger records e1 applied: %v, %v", ok, err)
	}
}

// TestLiveAndReplayTakeTurnsOnAnEntity: within one process a replay re-delivers an event
// while the live consumer is still applying it. The replay waits for the entity, then finds
// the event applied: the handler sees it once. (Both read the ledger before either
// recorded, so without the turn both would apply it.)
func TestLiveAndReplayTakeTurnsOnAnEntity(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	l := openLedger(t, h, false)
	live := h.deliver(assetEvent("e1", 1, "updated", t0, ""))
	replay := h.replayOf(live.Meta.Sequence.Stream, false)

	applying := make(chan struct{})
	release := make(chan struct{})
	var mu sync.Mutex
	var handled []string
	handler := func(_ context.Context, batch []*consumer.Message) []error {
		mu.Lock()
		for _, m := range batch {
			handled = append(handled, m.Event.ID)
		}
		first := len(handled) == 1
		mu.Unlock()
		if first {
			close(applying)
			<-release
		}
		return make([]error, len(batch))
	}
	apply := consumer.Idempotent(l)(handler)
	liveErr := make(chan error, 1)
	go func() { liveErr <- apply(ctx, []*consumer.Message{live})[0] }()
	<-applying
	replayErr := make(chan error, 1)
	go func() { replayErr <- apply(ctx, []*consumer.Message{replay})[0] }()
	select {
	case err := <-replayErr:
		t.Fatalf("the replay settled (%v) while the live consumer was applying the event", err)
	case <-time.After(200 * time.Millisecond): // the replay must still be waiting
	}
	close(release)
	if err := <-liveErr; err != nil {
		t.Fatalf("live: %v", err)
	}
	if err := <-replayErr; !errors.Is(err, consumer.ErrAlreadyApplied) {
		t.Fatalf("replay: %v, want ErrAlreadyApplied", err)
	}
	if !slices.Equal(handled, []string{"e1"}) {
		t.Fatalf("the handler saw %v, want e1 once", handled)
	}
}

// TestNewestChangeOfABatchWins: of several changes of one entity in a batch only the newest
// is applied; the older ones, and a change older than one claimed before, are superseded.
func TestNewestChangeOfABatchWins(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	l := openLedger(t, h, true)
	sink := &recorder{}
	apply := consumer.Idempotent(l)(sink.handle)
	if err := apply(ctx, []*consumer.Message{h.deliver(assetEvent("a2", 2, "updated", t0.Add(time.Hour), ""))})[0]; err != nil {
		t.Fatal(err)
	}
	sink.seen = nil
	batch := []*consumer.Message{
		h.deliver(assetEvent("b1", 1, "updated", t0, "")),
		h.deliver(assetEvent("b3", 1, "updated", t0.Add(2*time.Minute), "")),
		h.deliver(assetEvent("b2", 1, "updated", t0.Add(time.Minute), "")),
		h.deliver(assetEvent("a1", 2, "updated", t0, "")), // older than a2, applied before
	}
	errs := apply(ctx, batch)
	want := []error{consumer.ErrSuperseded, nil, consumer.ErrSuperseded, consumer.ErrSuperseded}
	for i := range want {
		if !errors.Is(errs[i], want[i]) || (want[i] == nil && errs[i] != nil) {
			t.Errorf("%s: %v, want %v", batch[i].Event.ID, errs[i], want[i])
		}
	}
	if !slices.Equal(sink.seen, []string{"b3"}) {
		t.Fatalf("the handler saw %v, want b3", sink.seen)
	}
}
