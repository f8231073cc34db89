// Package consumer is what a fieldstream consumer microservice is written with: a durable
// JetStream pull consumer on EVENTS whose messages flow through a pipeline of middleware —
// panic recovery, in-process retry with backoff, an idempotency ledger, decoding,
// dead-lettering and metrics — into a handler that applies events to a downstream system.
// Each layer reports a message's outcome as the error it returns for it, and the consumer
// settles the message by that error alone.
//
// Errors are classified once, with pkg/failure: a permanent error is dead-lettered at once;
// a transient one is retried in process, then negatively acknowledged with a growing delay,
// and dead-lettered when JetStream's MaxDeliver is reached. Nothing is acknowledged before it
// was applied or dead-lettered, so a crash loses nothing; the ledger makes redelivery,
// replay and re-publication apply nothing twice.
//
// Beside its live consumer a service runs, through the same handler, the replays an
// operator requests of it — consumers on EVENTS itself, see ReplayWindow — and its redriven
// dead letters (RedriveName).
package consumer

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldstream/fieldstream/pkg/event"
)

// Message is one delivery of an event: the JetStream message, its metadata and, once
// decoded, its envelope.
type Message struct {
	Msg  jetstream.Msg
	Meta *jetstream.MsgMetadata
	// Event is the envelope; it is the zero value until Decode (or Idempotent) decoded it.
	Event event.CloudEvent
	// Replay is set when the message re-delivers an event: from a replay consumer, or a
	// redriven dead letter (whose Subject and EventsSequence then name the original).
	Replay *Replay

	// id is the event id read from the message's headers; undecoded is set while Event
	// has not been decoded yet. (A Message built by hand, with its Event, counts as
	// decoded.)
	id        string
	undecoded bool
	// span is the message's processing span, a child of the trace context its headers
	// carry (the gateway's publish); nil for a message built by hand.
	span trace.Span
}

// TraceContext returns ctx carrying the message's processing span, so that what the
// handler calls for this message — a sink's HTTP request, a dead letter — continues the
// event's trace. A handler applying one message at a time gets it from PerMessage already.
func (m *Message) TraceContext(ctx context.Context) context.Context {
	if m.span == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, m.span)
}

// ID is the event's id: the CloudEvents id once the envelope is decoded; before that the
// message's Nats-Msg-Id (or Fs-Event-Id for a redriven dead letter), which fieldstream's producers
// set to the same id, so the ledger can skip a message without decoding it.
func (m *Message) ID() string {
	if m.id != "" {
		return m.id
	}
	return m.Event.ID
}

// HeaderEventID carries the event id of a dead letter (and of its redrive), whose
// Nats-Msg-Id is its own.
const HeaderEventID = "Fs-Event-Id"

// BatchHandler applies a batch of events and returns one error per message, in order: nil
// when applied; ErrAlreadyApplied, ErrSuperseded or ErrDeadLettered (possibly wrapped) when
// settled without being applied; any other error is a failure, classified with pkg/failure.
// A handler that applies events one by one is a Handler made into a BatchHandler with
// PerMessage.
type BatchHandler func(ctx context.Context, batch []*Message) []error

// Handler applies one event.
type Handler func(ctx context.Context, m *Message) error

// Middleware wraps a BatchHandler with one concern.
type Middleware func(BatchHandler) BatchHandler

// Chain wraps h in mws; the first middleware is the outermost.
func Chain(h BatchHandler, mws ...Middleware) BatchHandler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// PerMessage turns h into a BatchHandler that applies the batch one message at a time, in
// order.
func PerMessage(h Handler) BatchHandler {
	return func(ctx context.Context, batch []*Message) []error {
		errs := make([]error, len(batch))
		for i, m := range batch {
			errs[i] = h(m.TraceContext(ctx), m)
		}
		return errs
	}
}

// source says what a consumer's deliveries are: events as stored (the live consumer), the
// events of a replay window, or redriven dead letters. It reads a delivery into a Message.
type source struct {
	name    string        // the JetStream consumer
	replay  *ReplayWindow // set for a replay consumer
	redrive bool          // set for a redrive consumer
}

// readMessage builds the Message of a delivery of the live consumer.
func readMessage(msg jetstream.Msg) (*Message, error) { return source{}.read(msg) }

// read builds the Message of a delivery from its metadata and headers, leaving its envelope
// for Decode; a delivery without JetStream metadata is an error.
func (s source) read(msg jetstream.Msg) (*Message, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return nil, err
	}
	h := msg.Headers()
	m := &Message{Msg: msg, Meta: meta, undecoded: true, id: h.Get(jetstream.MsgIDHeader)}
	switch {
	case s.replay != nil:
		m.Replay = &Replay{Consumer: s.name, ID: s.replay.ID, Subject: msg.Subject(), Sequence: meta.Sequence.Stream, Force: s.replay.Force}
	case s.redrive:
		// A redrive message is its dead letter copied: the provenance headers name the
		// event, Fs-Event-Id its id.
		m.Replay = &Replay{Consumer: s.name, ID: "r" + strconv.FormatUint(meta.Sequence.Stream, 10), Subject: h.Get(HeaderDLQSubject)}
		m.Replay.Sequence, _ = strconv.ParseUint(h.Get(HeaderDLQSequence), 10, 64)
		m.Replay.RedriveOf, _ = strconv.ParseUint(h.Get(HeaderRedriveOf), 10, 64)
		m.id = h.Get(HeaderEventID)
	}
	return m, nil
}

// pending returns the indices of the messages whose error is nil: those a middleware has
// not settled or failed, which it hands on.
func pending(errs []error) []int {
	var idx []int
	for i, err := range errs {
		if err == nil {
			idx = append(idx, i)
		}
	}
	return idx
}

// passOn hands next the messages of batch at idx and stores its results in errs.
func passOn(ctx context.Context, next BatchHandler, batch []*Message, idx []int, errs []error) {
	part := batch
	if len(idx) != len(batch) {
		part = subset(batch, idx)
	}
	res := oneResultEach(next(ctx, part), len(part))
	for k, i := range idx {
		errs[i] = res[k]
	}
}

// oneResultEach returns res if it holds one result for each of n messages; otherwise the
// handler has a bug, and every message gets an error: never ack what may not have been
// applied.
func oneResultEach(res []error, n int) []error {
	if len(res) == n {
		return res
	}
	err := fmt.Errorf("handler returned %d results for %d messages", len(res), n)
	res = make([]error, n)
	for i := range res {
		res[i] = err
	}
	return res
}

// subset returns the messages of batch at idx.
func subset(batch []*Message, idx []int) []*Message {
	out := make([]*Message, len(idx))
	for i, j := range idx {
		out[i] = batch[j]
	}
	return out
}
