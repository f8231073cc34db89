package consumer

import (
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReplayPrefix is the first token of replay subjects: replay.<consumer>.<original subject>.
// The REPLAY stream holds them; each consumer reads only its own, so a replay or a redrive
// reaches the one consumer it is meant for.
const ReplayPrefix = "replay"

// Headers of a replayed or redriven message.
const (
	HeaderReplaySubject  = "Fs-Replay-Subject"  // the original EVENTS subject
	HeaderReplaySequence = "Fs-Replay-Sequence" // the original EVENTS sequence
	HeaderReplayForce    = "Fs-Replay-Force"    // "true": apply even if the ledger has it
	HeaderRedriveOf      = "Fs-Redrive-Of"      // the DLQ sequence of a redriven dead letter
)

// CarriedHeader returns the headers of a stored message that travel with it when it is
// published again (a dead letter, a replay, a redrive): all of h but NATS's own "Nats-*"
// headers. Those are instructions to the stream that stored it or facts about that
// store — the message id, an atomic batch's id and commit mark (which another stream
// would refuse), expected sequences, direct-get sequence and time — and must not be
// repeated; the caller sets the message id the copy needs.
func CarriedHeader(h nats.Header) nats.Header {
	out := make(nats.Header, len(h)+4)
	for k, v := range h {
		if !strings.HasPrefix(k, "Nats-") {
			out[k] = slices.Clone(v)
		}
	}
	return out
}

// ReplaySubject is the subject that re-delivers an event on original to consumer only.
func ReplaySubject(consumer, original string) string {
	return ReplayPrefix + "." + consumer + "." + original
}

// Replay describes a re-delivery: a replay of an EVENTS window or a redriven dead letter.
type Replay struct {
	Subject   string // original EVENTS subject
	Sequence  uint64 // original EVENTS sequence
	Force     bool   // apply even if the ledger says it was applied
	RedriveOf uint64 // DLQ sequence of the dead letter being redriven; 0 for a replay
}

// replayOf reads the replay headers of a message on a replay subject; nil otherwise.
func replayOf(subject string, get func(string) string) *Replay {
	if !strings.HasPrefix(subject, ReplayPrefix+".") {
		return nil
	}
	r := &Replay{Subject: get(HeaderReplaySubject), Force: get(HeaderReplayForce) == "true"}
	r.Sequence, _ = strconv.ParseUint(get(HeaderReplaySequence), 10, 64)
	r.RedriveOf, _ = strconv.ParseUint(get(HeaderRedriveOf), 10, 64)
	if r.Subject == "" { // replay.<consumer>.<original subject>
		if parts := strings.SplitN(subject, ".", 3); len(parts) == 3 {
			r.Subject = parts[2]
		}
	}
	return r
}

// Subject is the event's EVENTS subject, also for a replayed message.
func (m *Message) Subject() string {
	if m.Replay != nil {
		return m.Replay.Subject
	}
	return m.Msg.Subject()
}

// EventsSequence is the event's EVENTS sequence, also for a replayed message.
func (m *Message) EventsSequence() uint64 {
	if m.Replay != nil {
		return m.Replay.Sequence
	}
	if m.Meta == nil {
		return 0
	}
	return m.Meta.Sequence.Stream
}

// ReplayMsg is the message that re-delivers the event stored on EVENTS subject subject at
// sequence seq, with headers h and data, to consumer target only; force applies it even if
// the ledger says it was applied. run distinguishes the message ids of one replay from
// another's, so a window replayed twice is stored twice.
func ReplayMsg(target, subject string, seq uint64, h nats.Header, data []byte, force bool, run string) *nats.Msg {
	out := CarriedHeader(h)
	if id := h.Get(jetstream.MsgIDHeader); id != "" {
		out.Set(HeaderEventID, id) // lets the consumer's ledger skip it undecoded
	}
	out.Set(HeaderReplaySubject, subject)
	out.Set(HeaderReplaySequence, strconv.FormatUint(seq, 10))
	if force {
		out.Set(HeaderReplayForce, "true")
	}
	out.Set(jetstream.MsgIDHeader, "replay:"+target+":"+strconv.FormatUint(seq, 10)+":"+run)
	return &nats.Msg{Subject: ReplaySubject(target, subject), Header: out, Data: data}
}
