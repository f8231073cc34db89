package consumer

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fieldstream/fieldstream/pkg/failure"
)

// Decode decodes the CloudEvents envelope of every message of the batch that is not
// decoded yet, so that next can read Message.Event; a message decoded before passes as it
// is. A message that is not a CloudEvent never reaches next: its error is permanent, and
// DeadLetter, outside, dead-letters it.
//
// The consumer hands its handler messages undecoded, so that Idempotent can skip an event
// by the id in its headers alone; Decode belongs after it, before anything that reads
// Event.
func Decode() Middleware {
	return func(next BatchHandler) BatchHandler {
		return func(ctx context.Context, batch []*Message) []error {
			errs := make([]error, len(batch))
			for i, m := range batch {
				errs[i] = m.decodeEvent()
			}
			if todo := pending(errs); len(todo) > 0 {
				passOn(ctx, next, batch, todo, errs)
			}
			return errs
		}
	}
}

// decodeEvent decodes the envelope unless it is decoded; an envelope that is not a
// CloudEvent is a permanent error (it can never be applied).
func (m *Message) decodeEvent() error {
	if !m.undecoded {
		return nil
	}
	m.undecoded = false
	if err := json.Unmarshal(m.Msg.Data(), &m.Event); err != nil {
		return failure.Permanent(fmt.Errorf("undecodable event: %w", err))
	}
	m.id = "" // from now on the envelope's id is the event's id
	return nil
}
