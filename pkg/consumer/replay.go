package consumer

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A replay re-delivers a window of EVENTS to one consumer: it is a durable consumer on
// EVENTS itself — nothing is copied — whose filters are the target consumer's (narrowed,
// never widened) and whose start is the window's first sequence. An operator creates it
// (fsctl replay); every replica of the target service discovers it within a poll, runs it
// through the same pipeline as its live consumer, and deletes it once the window is
// settled. Its metadata (ReplayWindow) says whose it is and where the window ends: a
// consumer has no end of its own, so deliveries past the end are acknowledged unread.
//
// Replay consumers are named <target>-replay-<slot>, slot 1..ReplaySlots, a fixed set:
// NATS permissions match whole subject tokens and a consumer's name is one token of the
// subjects that pull and acknowledge for it, so a fixed set of names is what lets
// deploy/nats-server.conf grant each service its own replays and nothing else.

// ReplaySlots is how many replays of one consumer can be under way at once.
const ReplaySlots = 4

// ReplayName is the name of replay slot slot (1..ReplaySlots) of consumer target.
func ReplayName(target string, slot int) string { return target + "-replay-" + strconv.Itoa(slot) }

// Metadata of a replay consumer: the wire contract between fsctl, which writes it, and the
// target service, which reads it.
const (
	metaReplayOf  = "fieldstream.dev/replay-of"
	metaReplayID  = "fieldstream.dev/replay-id"
	metaFromSeq   = "fieldstream.dev/replay-from-seq"
	metaUntilSeq  = "fieldstream.dev/replay-until-seq"
	metaForce     = "fieldstream.dev/replay-force"
	metaRate      = "fieldstream.dev/replay-rate"
	metaTotal     = "fieldstream.dev/replay-events"
	metaRequested = "fieldstream.dev/replay-requested"
)

// ReplayWindow is what a replay consumer re-delivers and how.
type ReplayWindow struct {
	// Target is the consumer the events are re-delivered to; no other sees them.
	Target string
	// ID tells one replay from another that used the same slot before.
	ID string
	// Filters select the events: the target's filters, narrowed.
	Filters []string
	// FromSeq and UntilSeq bound the window (EVENTS sequences, both included).
	FromSeq, UntilSeq uint64
	// Force applies events the target's ledger records as applied (the newest change of
	// each entity in the window; never one older than a change applied since).
	Force bool
	// Rate bounds the events per second each replica of the target applies (0: no bound).
	Rate float64
	// Events is how many events the window held when the replay was requested.
	Events int
	// Requested is when.
	Requested time.Time
}

// Validate reports a window that cannot be run.
func (w ReplayWindow) Validate() error {
	switch {
	case !validName(w.Target):
		return fmt.Errorf("replay: target %q: want letters, digits, '-' or '_'", w.Target)
	case w.ID == "" || strings.ContainsAny(w.ID, " \t\r\n"):
		return fmt.Errorf("replay: id %q", w.ID)
	case len(w.Filters) == 0:
		return errors.New("replay: no filter subjects")
	case w.FromSeq == 0 || w.UntilSeq < w.FromSeq:
		return fmt.Errorf("replay: window %d..%d", w.FromSeq, w.UntilSeq)
	case w.Rate < 0:
		return fmt.Errorf("replay: negative rate %g", w.Rate)
	}
	return nil
}

// ConsumerConfig is the replay consumer for w in slot: explicit acks, deliveries and ack
// wait as the target's (target), starting at FromSeq. A replay nobody pulls for
// abandonAfter (paused by an operator who went away, or a target service that stays down)
// is deleted by the server.
func (w ReplayWindow) ConsumerConfig(slot int, target jetstream.ConsumerConfig, abandonAfter time.Duration) jetstream.ConsumerConfig {
	md := map[string]string{
		metaReplayOf:  w.Target,
		metaReplayID:  w.ID,
		metaFromSeq:   strconv.FormatUint(w.FromSeq, 10),
		metaUntilSeq:  strconv.FormatUint(w.UntilSeq, 10),
		metaForce:     strconv.FormatBool(w.Force),
		metaRate:      strconv.FormatFloat(w.Rate, 'g', -1, 64),
		metaTotal:     strconv.Itoa(w.Events),
		metaRequested: w.Requested.UTC().Format(time.RFC3339Nano),
	}
	cfg := jetstream.ConsumerConfig{
		Durable:           ReplayName(w.Target, slot),
		Description:       fmt.Sprintf("replay %s of EVENTS %d..%d to %s", w.ID, w.FromSeq, w.UntilSeq, w.Target),
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       w.FromSeq,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           target.AckWait,
		MaxDeliver:        target.MaxDeliver,
		MaxAckPending:     target.MaxAckPending,
		InactiveThreshold: abandonAfter,
		Metadata:          md,
	}
	if len(w.Filters) == 1 {
		cfg.FilterSubject = w.Filters[0]
	} else {
		cfg.FilterSubjects = slices.Clone(w.Filters)
	}
	return cfg
}

// ReadReplayWindow reads the window of a replay consumer from its configuration; ok is
// false for any other consumer.
func ReadReplayWindow(cfg jetstream.ConsumerConfig) (w ReplayWindow, ok bool) {
	md := cfg.Metadata
	if md[metaReplayOf] == "" || md[metaReplayID] == "" {
		return w, false
	}
	w.Target, w.ID = md[metaReplayOf], md[metaReplayID]
	w.Filters = cfg.FilterSubjects
	if len(w.Filters) == 0 && cfg.FilterSubject != "" {
		w.Filters = []string{cfg.FilterSubject}
	}
	var err1, err2 error
	w.FromSeq, err1 = strconv.ParseUint(md[metaFromSeq], 10, 64)
	w.UntilSeq, err2 = strconv.ParseUint(md[metaUntilSeq], 10, 64)
	if err1 != nil || err2 != nil {
		return w, false
	}
	w.Force = md[metaForce] == "true"
	w.Rate, _ = strconv.ParseFloat(md[metaRate], 64)
	w.Events, _ = strconv.Atoi(md[metaTotal])
	w.Requested, _ = time.Parse(time.RFC3339Nano, md[metaRequested])
	return w, true
}

// ReplaySettled reports whether a replay consumer in state info has settled its window:
// nothing waits for an acknowledgement or a redelivery, and either the window's end was
// delivered or nothing more is pending.
func ReplaySettled(info *jetstream.ConsumerInfo, w ReplayWindow) bool {
	return info.NumAckPending == 0 && info.AckFloor.Consumer == info.Delivered.Consumer &&
		(info.Delivered.Stream >= w.UntilSeq || info.NumPending == 0)
}

// RedrivePrefix is the first token of redrive subjects, redrive.<consumer>.<original
// subject>: the copy of a dead letter, in DLQ beside it, that re-delivers it to the
// consumer that failed it, and only to it.
const RedrivePrefix = "redrive"

// RedriveName is the durable consumer on DLQ through which consumer target reads its
// redriven dead letters.
func RedriveName(target string) string { return target + "-redrive" }

// RedriveSubject is the subject that re-delivers a dead letter of original to consumer.
func RedriveSubject(consumer, original string) string {
	return RedrivePrefix + "." + consumer + "." + original
}

// HeaderRedriveOf is the DLQ sequence of the dead letter a redrive message re-delivers.
const HeaderRedriveOf = "Fs-Redrive-Of"

// CarriedHeader returns the headers of a stored message that travel with it when it is
// published again (a dead letter, a redrive): all of h but NATS's own "Nats-*" headers.
// Those are instructions to the stream that stored it or facts about that store — the
// message id, an atomic batch's id and commit mark (which another stream would refuse),
// expected sequences, direct-get sequence and time — and must not be repeated; the caller
// sets the message id the copy needs.
func CarriedHeader(h nats.Header) nats.Header {
	out := make(nats.Header, len(h)+4)
	for k, v := range h {
		if !strings.HasPrefix(k, "Nats-") {
			out[k] = slices.Clone(v)
		}
	}
	return out
}

// Replay describes a re-delivery: an event of a replay window, or a redriven dead letter.
type Replay struct {
	// Consumer is the replay or redrive consumer that delivered the message.
	Consumer string
	// ID is the replay's id, or "r<DLQ sequence>" of the redrive message.
	ID string
	// Subject and Sequence are the event's in EVENTS.
	Subject  string
	Sequence uint64
	// Force applies the event even if the ledger records it as applied.
	Force bool
	// RedriveOf is the DLQ sequence of the dead letter being redriven; 0 for a replay.
	RedriveOf uint64
}

// Subject is the event's EVENTS subject, also for a redriven message.
func (m *Message) Subject() string {
	if m.Replay != nil {
		return m.Replay.Subject
	}
	return m.Msg.Subject()
}

// EventsSequence is the event's EVENTS sequence, also for a redriven message.
func (m *Message) EventsSequence() uint64 {
	if m.Replay != nil {
		return m.Replay.Sequence
	}
	if m.Meta == nil {
		return 0
	}
	return m.Meta.Sequence.Stream
}
