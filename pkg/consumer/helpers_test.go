package consumer_test

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
)

func zerologNop() zerolog.Logger { return zerolog.Nop() }

// assetEvent is the message of an event about asset id at time at as the gateway stores
// it; msgID "" makes it eventID.
func assetEvent(eventID string, id int64, action string, at time.Time, msgID string) *nats.Msg {
	ce := event.New(event.SourceServiceTrade, "t", "asset", strconv.FormatInt(id, 10), action, eventID, at, time.Now(), []byte(`{"n":1}`))
	subj, _ := event.Subject("t", "asset", ce.EntityID, action)
	if msgID == "" {
		msgID = eventID
	}
	return &nats.Msg{Subject: subj, Data: ce.AppendJSON(nil), Header: nats.Header{jetstream.MsgIDHeader: []string{msgID}}}
}

// replayOf returns the event stored at EVENTS sequence seq as a replay consumer of c
// delivers it; force applies it whatever the ledger says.
func (h *harness) replayOf(seq uint64, force bool) *consumer.Message {
	h.t.Helper()
	w := consumer.ReplayWindow{Target: "c", ID: "r1", Filters: []string{"events.>"}, FromSeq: seq, UntilSeq: seq, Force: force}
	msg := h.fetch("EVENTS", seq, 1)[0]
	m, err := consumer.ReadReplayMessage(msg, w)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// store publishes msg and returns its stream sequence.
func (h *harness) store(msg *nats.Msg) uint64 {
	h.t.Helper()
	ack, err := h.js.PublishMsg(context.Background(), msg)
	if err != nil {
		h.t.Fatal(err)
	}
	return ack.Sequence
}

// fetch takes n messages of stream from sequence from on, as a consumer delivers them.
// They are never acknowledged.
func (h *harness) fetch(stream string, from uint64, n int) []jetstream.Msg {
	h.t.Helper()
	ctx := context.Background()
	c, err := h.js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	b, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []jetstream.Msg
	for msg := range b.Messages() {
		out = append(out, msg)
	}
	if len(out) != n {
		h.t.Fatalf("%d messages from %s at %d, want %d (%v)", len(out), stream, from, n, b.Error())
	}
	return out
}

// deliveries takes n messages of stream from sequence from on and reads them as the live
// Consumer does before its handler sees them: metadata and id read, envelope undecoded.
func (h *harness) deliveries(stream string, from uint64, n int) []*consumer.Message {
	h.t.Helper()
	var out []*consumer.Message
	for _, msg := range h.fetch(stream, from, n) {
		m, err := consumer.ReadMessage(msg)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// deliver stores msg on EVENTS and returns it as delivered.
func (h *harness) deliver(msg *nats.Msg) *consumer.Message {
	h.t.Helper()
	return h.deliveries("EVENTS", h.store(msg), 1)[0]
}

// recorder is a BatchHandler that notes the ids of the events it is handed and returns err
// for each.
type recorder struct {
	seen []string
	err  error
}

func (r *recorder) handle(_ context.Context, batch []*consumer.Message) []error {
	errs := make([]error, len(batch))
	for i, m := range batch {
		r.seen = append(r.seen, m.Event.ID)
		errs[i] = r.err
	}
	return errs
}

// Failures of a sink, one of each class.
var (
	errUnavailable = failure.Transient(errors.New("503 service unavailable"), 0)
	errRejected    = failure.Permanent(errors.New("422 unprocessable"))
)
