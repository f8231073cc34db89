// Package consumer is what a fieldstream consumer microservice is written with: a durable
// JetStream pull consumer on EVENTS whose messages flow through a pipeline of middleware —
// panic recovery, in-process retry with backoff, an idempotency ledger, dead-lettering and
// metrics — into a handler that applies events to a downstream system.
//
// Errors are classified once, with pkg/failure: a permanent error is dead-lettered at once;
// a transient one is retried in process, then negatively acknowledged with a growing delay,
// and dead-lettered when JetStream's MaxDeliver is reached. Nothing is acknowledged before it
// was applied or dead-lettered, so a crash loses nothing; the ledger makes redelivery,
// replay and re-publication apply nothing twice.
package consumer

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
)

// Message is one delivery of an event: the JetStream message, its metadata and its
// decoded envelope.
type Message struct {
	Msg   jetstream.Msg
	Meta  *jetstream.MsgMetadata
	Event event.CloudEvent
	// Replay is set when the message re-delivers an event (a replay or a redrive) from
	// the REPLAY stream; Subject and EventsSequence then name the original.
	Replay *Replay
}

// BatchHandler applies a batch of events and returns one error per message, in order
// (nil: applied). A handler that applies events one by one is a Handler made into a
// BatchHandler with PerMessage.
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
			errs[i] = h(ctx, m)
		}
		return errs
	}
}

// decode builds the Message of a delivery; an envelope that is not a CloudEvent is a
// permanent error (it can never be applied), still carried with its raw message so it can be
// dead-lettered.
func decode(msg jetstream.Msg) (*Message, error) {
	m := &Message{Msg: msg, Replay: replayOf(msg.Subject(), msg.Headers().Get)}
	meta, err := msg.Metadata()
	if err != nil {
		return m, failure.Permanent(err)
	}
	m.Meta = meta
	if err := json.Unmarshal(msg.Data(), &m.Event); err != nil {
		return m, failure.Permanent(err)
	}
	return m, nil
}

// subset returns the messages of batch at idx.
func subset(batch []*Message, idx []int) []*Message {
	out := make([]*Message, len(idx))
	for i, j := range idx {
		out[i] = batch[j]
	}
	return out
}
