package event

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a stored event besides Nats-Msg-Id (the event id, which JetStream
// deduplicates by) and Content-Type (ContentType).
const (
	// HeaderOrigin says where an event came from when it was not a webhook.
	HeaderOrigin = "Fs-Origin"
	// OriginPoll is an event a poller made by reading the source's current state: it
	// restates a change rather than reporting one.
	OriginPoll = "poll"
)

// DeadLetterReserve is the part of NATS's max_payload an event must leave free. A consumer
// that cannot apply an event dead-letters it whole — payload and headers — plus provenance
// headers that pkg/consumer bounds to at most this many bytes, so an event stored with this
// much room left can always be dead-lettered. Producers refuse a larger event at once.
const DeadLetterReserve = 4096

// Message is an event as the EVENTS stream stores it: one NATS message on the event's
// subject (Subject), CloudEvents JSON, with the event id as its Nats-Msg-Id. Every producer
// builds it with NewMessage; consumers read the headers back with OriginOf.
type Message struct {
	Subject string
	ID      string // the CloudEvents id, and the message's Nats-Msg-Id
	Origin  string // HeaderOrigin; empty for a webhook's event
	Data    []byte // the CloudEvents JSON
	// Trace is the W3C trace context (traceparent, tracestate) of the request that carried
	// the event, written as headers of those names, so that its consumers and sinks continue
	// that trace (tracing.Fields makes it; nil: none).
	Trace map[string]string
}

// NewMessage builds the message of ce; origin is "" for a webhook's event, OriginPoll for a
// polled one. It returns ErrInvalidSubjectToken when ce cannot make a subject.
func NewMessage(ce *CloudEvent, origin string) (Message, error) {
	subj, err := Subject(ce.Tenant, ce.Entity, ce.EntityID, ce.Action)
	if err != nil {
		return Message{}, err
	}
	return Message{Subject: subj, ID: ce.ID, Origin: origin, Data: ce.AppendJSON(make([]byte, 0, len(ce.Data)+512))}, nil
}

// NATS returns the NATS message to publish.
func (m Message) NATS() *nats.Msg {
	h := nats.Header{jetstream.MsgIDHeader: []string{m.ID}, "Content-Type": []string{ContentType}}
	if m.Origin != "" {
		h[HeaderOrigin] = []string{m.Origin}
	}
	for k, v := range m.Trace {
		h[k] = []string{v} // as written: nats.Header looks keys up exactly
	}
	return &nats.Msg{Subject: m.Subject, Data: m.Data, Header: h}
}

// Size is about what NATS counts of the message against max_payload: data and headers,
// their framing included.
func (m Message) Size() int {
	const framing = 64 // NATS/1.0 line, ": " and CRLFs
	n := len(m.Data) + len(jetstream.MsgIDHeader) + len(m.ID) + len("Content-Type") + len(ContentType) + framing
	if m.Origin != "" {
		n += len(HeaderOrigin) + len(m.Origin)
	}
	for k, v := range m.Trace {
		n += len(k) + len(v) + 4
	}
	return n
}

// OriginOf returns the origin a stored event's headers name; "" for a webhook's.
func OriginOf(h nats.Header) string { return h.Get(HeaderOrigin) }
