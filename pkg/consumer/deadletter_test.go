package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/streams"
)

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name string
		err  error // the handler's, at the message's first delivery
		// maxDeliver is the delivery at which a transient failure is given up on.
		maxDeliver int
		noDLQ      bool  // the dead-letter stream is missing
		want       error // errors.Is
		wantClass  string
	}{
		{name: "permanent", err: errRejected, maxDeliver: 5, want: consumer.ErrDeadLettered, wantClass: consumer.ClassPermanent},
		{name: "transient before the last delivery", err: errUnavailable, maxDeliver: 5, want: errUnavailable},
		{name: "transient at the last delivery", err: errUnavailable, maxDeliver: 1, want: consumer.ErrDeadLettered, wantClass: consumer.ClassExhausted},
		{name: "already applied at the last delivery", err: fmt.Errorf("seq 1: %w", consumer.ErrAlreadyApplied), maxDeliver: 1, want: consumer.ErrAlreadyApplied},
		{name: "superseded at the last delivery", err: consumer.ErrSuperseded, maxDeliver: 1, want: consumer.ErrSuperseded},
		{name: "shutting down at the last delivery", err: context.Canceled, maxDeliver: 1, want: context.Canceled},
		{name: "applied at the last delivery", maxDeliver: 1},
		{name: "permanent, the dead letter not stored", err: errRejected, maxDeliver: 5, noDLQ: true, want: errRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			if tt.noDLQ {
				if err := h.js.DeleteStream(ctx, "DLQ"); err != nil {
					t.Fatal(err)
				}
			}
			m := h.deliver(assetEvent("e1", 1, "updated", t0, ""))
			handler := func(context.Context, []*consumer.Message) []error { return []error{tt.err} }
			dl := consumer.NewDeadLetters(h.js, "c", tt.maxDeliver, nil, zerologNop())
			err := consumer.DeadLetter(dl)(handler)(ctx, []*consumer.Message{m})[0]
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if tt.wantClass != "" && !errors.Is(err, tt.err) {
				t.Errorf("error %v lost its cause %v", err, tt.err)
			}
			if tt.noDLQ {
				if failure.IsPermanent(err) || errors.Is(err, consumer.ErrDeadLettered) {
					t.Errorf("error %v, want a transient one: the message must come back", err)
				}
				return
			}
			letters := h.dlq()
			switch {
			case tt.wantClass == "" && len(letters) != 0:
				t.Errorf("%d dead letters, want none", len(letters))
			case tt.wantClass != "" && len(letters) != 1:
				t.Errorf("%d dead letters, want one", len(letters))
			case tt.wantClass != "":
				d := letters[0]
				if d.Subject != "dlq.c.t.asset.1.updated" || d.Header.Get(consumer.HeaderDLQClass) != tt.wantClass ||
					d.Header.Get(consumer.HeaderEventID) != "e1" || d.Header.Get(consumer.HeaderDLQError) != tt.err.Error() {
					t.Errorf("dead letter %s %v", d.Subject, d.Header)
				}
			}
		})
	}
}

// TestWatchTakesOverTheEarlierWatch: the MAX_DELIVERIES watch of a service upgraded from
// the version that watched only its live consumer keeps its durable — and its place in
// ADVISORIES, so advisories it handled are not handled again — and widens its filters.
func TestWatchTakesOverTheEarlierWatch(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.js.CreateStream(ctx, jetstream.StreamConfig{Name: streams.Advisories, Subjects: []string{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"}}); err != nil {
		t.Fatal(err)
	}
	const live = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.EVENTS.c"
	earlier, err := h.js.CreateConsumer(ctx, streams.Advisories, jetstream.ConsumerConfig{Durable: "max-deliveries-EVENTS-c",
		FilterSubject: live, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	// An advisory the earlier watch handled.
	if _, err := h.js.Publish(ctx, live, []byte(`{"stream":"EVENTS","consumer":"c","stream_seq":99,"deliveries":10}`)); err != nil {
		t.Fatal(err)
	}
	m, err := earlier.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	dl := consumer.NewDeadLetters(h.js, "c", 2, nil, zerologNop())
	stop, err := dl.WatchMaxDeliveries(ctx, h.js, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	info, err := earlier.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{live, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.DLQ.c-redrive"}
	for slot := 1; slot <= consumer.ReplaySlots; slot++ {
		want = append(want, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.EVENTS."+consumer.ReplayName("c", slot))
	}
	if !slices.Equal(info.Config.FilterSubjects, want) || info.AckFloor.Stream != 1 {
		t.Fatalf("the watch after the upgrade: filters %v, ack floor %d; want %v and 1", info.Config.FilterSubjects, info.AckFloor.Stream, want)
	}
}
