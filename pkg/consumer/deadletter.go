package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/tracing"
	"github.com/fieldstream/fieldstream/streams"
)

// DLQPrefix is the first token of every dead letter's subject; the DLQ stream captures
// DLQPrefix + ".>".
const DLQPrefix = "dlq"

// Headers a dead letter carries besides the original message's own.
const (
	HeaderDLQSubject      = "Fs-Dlq-Subject"       // the original subject
	HeaderDLQStream       = "Fs-Dlq-Stream"        // the original stream
	HeaderDLQSequence     = "Fs-Dlq-Stream-Seq"    // the original stream sequence
	HeaderDLQConsumer     = "Fs-Dlq-Consumer"      // the consumer that gave up
	HeaderDLQClass        = "Fs-Dlq-Error-Class"   // permanent, exhausted
	HeaderDLQError        = "Fs-Dlq-Error"         // the last error
	HeaderDLQAttempts     = "Fs-Dlq-Attempts"      // deliveries so far
	HeaderDLQFirstFailure = "Fs-Dlq-First-Failure" // RFC 3339
	HeaderDLQLastFailure  = "Fs-Dlq-Last-Failure"  // RFC 3339
)

// Error classes of dead letters.
const (
	ClassPermanent = "permanent" // the event can never be applied as it is
	ClassExhausted = "exhausted" // transient failures outlasted MaxDeliver
)

// DeadLetters publishes dead letters for one consumer.
type DeadLetters struct {
	js         jetstream.JetStream
	consumer   string
	maxDeliver int
	ledger     *Ledger // for first-failure times; may be nil
	log        zerolog.Logger
	stream     string // where dead letters and redrives are stored
}

// NewDeadLetters returns the dead-letter publisher of consumer, which gives up on a
// transient failure at delivery maxDeliver.
func NewDeadLetters(js jetstream.JetStream, consumer string, maxDeliver int, ledger *Ledger, log zerolog.Logger) *DeadLetters {
	return &DeadLetters{js: js, consumer: consumer, maxDeliver: maxDeliver, ledger: ledger, log: log, stream: streams.DeadLetters}
}

// Subject is the dead letter's subject for an event subject:
// dlq.<consumer>.<tenant>.<entity>.<id>.<action>.
func (d *DeadLetters) Subject(original string) string {
	return DLQPrefix + "." + d.consumer + "." + strings.TrimPrefix(original, event.SubjectPrefix+".")
}

// Original is the message a dead letter is made of.
type Original struct {
	Subject  string
	Header   nats.Header
	Data     []byte
	Stream   string
	Sequence uint64 // stream sequence
	Attempts uint64 // deliveries so far
	EventID  string

	dedupSuffix string // set for re-deliveries, which dead-letter anew
}

func originalOf(m *Message) Original {
	o := Original{Subject: m.Subject(), Header: m.Msg.Headers(), Data: m.Msg.Data(), EventID: m.ID(), Sequence: m.EventsSequence()}
	if m.Meta != nil {
		o.Stream, o.Attempts = m.Meta.Stream, m.Meta.NumDelivered
	}
	switch {
	case m.Replay != nil && m.Replay.RedriveOf != 0:
		o = redrivenOriginal(o, m.Msg.Headers(), m.Meta.Sequence.Stream)
	case m.Replay != nil:
		// A replay dead-letters anew what the live consumer may have dead-lettered before.
		o.dedupSuffix = ":" + m.Replay.ID
	}
	return o
}

// maxDeadLetterError is the most of an error's text a dead letter keeps.
const maxDeadLetterError = 1024

// redrivenOriginal is o, read from redrive message seq with headers h, made the original
// event again: the dead letter it re-delivers is replaced by a new one, stored under its
// own message id, once this one is stored.
func redrivenOriginal(o Original, h nats.Header, seq uint64) Original {
	o.Header = CarriedHeader(h)
	for k := range o.Header {
		if strings.HasPrefix(k, "Fs-Dlq-") || k == HeaderRedriveOf {
			delete(o.Header, k)
		}
	}
	o.Subject, o.Stream = h.Get(HeaderDLQSubject), h.Get(HeaderDLQStream)
	o.Sequence, _ = strconv.ParseUint(h.Get(HeaderDLQSequence), 10, 64)
	o.EventID = h.Get(HeaderEventID)
	o.dedupSuffix = ":r" + strconv.FormatUint(seq, 10)
	return o
}

// Publish stores a dead letter for the message: its original payload and headers plus
// provenance. Its message id is derived from the original stream sequence, so the same
// message dead-lettered twice (by the consumer and by a MaxDeliver advisory) is stored once.
//
// The provenance adds at most event.DeadLetterReserve bytes to the original message (the
// error's text is cut to what is left, at most 1 KiB), so the dead letter of any event
// stored with that much room under NATS's max_payload fits.
func (d *DeadLetters) Publish(ctx context.Context, o Original, class string, cause error, first time.Time) error {
	now := time.Now().UTC()
	if first.IsZero() {
		first = now
	}
	h := CarriedHeader(o.Header)
	h.Set(HeaderDLQSubject, o.Subject)
	h.Set(HeaderDLQStream, o.Stream)
	h.Set(HeaderDLQSequence, strconv.FormatUint(o.Sequence, 10))
	h.Set(HeaderDLQConsumer, d.consumer)
	h.Set(HeaderDLQClass, class)
	h.Set(HeaderDLQAttempts, strconv.FormatUint(o.Attempts, 10))
	h.Set(HeaderDLQFirstFailure, first.UTC().Format(time.RFC3339Nano))
	h.Set(HeaderDLQLastFailure, now.Format(time.RFC3339Nano))
	if o.EventID != "" {
		h.Set(HeaderEventID, o.EventID) // a redrive can then skip an applied event undecoded
	}
	h.Set(jetstream.MsgIDHeader, "dlq:"+d.consumer+":"+o.Stream+":"+strconv.FormatUint(o.Sequence, 10)+o.dedupSuffix)
	// The dead letter continues the event's trace from the span that gave up on it (it
	// carries the event's own trace context otherwise); a redrive carries it on.
	tracing.Inject(ctx, h)
	room := event.DeadLetterReserve - (headerBytes(h) - headerBytes(o.Header)) - headerBytes(nats.Header{HeaderDLQError: {""}})
	msg := truncate(cause.Error(), min(maxDeadLetterError, room))
	h.Set(HeaderDLQError, msg)
	if _, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: d.Subject(o.Subject), Header: h, Data: o.Data}); err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	d.log.Warn().Str("consumer", d.consumer).Str("subject", o.Subject).Uint64("seq", o.Sequence).Str("event", o.EventID).
		Str("class", class).Str("error", msg).Msg("dead-lettered")
	return nil
}

// truncate flattens s to one line of at most n bytes, cut at a rune boundary and marked
// with an ellipsis when cut.
func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " | ")
	if len(s) <= n {
		return s
	}
	const more = "…"
	if n < len(more) {
		return ""
	}
	cut := n - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// headerBytes is what h takes of a NATS message: "Key: value\r\n" per value.
func headerBytes(h nats.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// DeadLetter sends messages that cannot be applied to the dead-letter stream: at once for a
// permanent error, and for a transient one at the last delivery JetStream allows
// (MaxDeliver). Their error becomes ErrDeadLettered. If the dead letter cannot be published
// the error stays transient, so the message is redelivered rather than lost. A message kept
// from the handler (ErrAlreadyApplied, ErrSuperseded) is settled, never dead-lettered.
func DeadLetter(d *DeadLetters) Middleware {
	return func(next BatchHandler) BatchHandler {
		return func(ctx context.Context, batch []*Message) []error {
			errs := next(ctx, batch)
			for i, err := range errs {
				if err == nil || skipped(err) || errors.Is(err, context.Canceled) {
					continue
				}
				m := batch[i]
				first := time.Time{}
				if d.ledger != nil && m.ID() != "" { // an undecodable message may name no id
					first, _ = d.ledger.FirstFailure(ctx, m.ID(), time.Now())
				}
				class := ""
				switch {
				case failure.IsPermanent(err):
					class = ClassPermanent
				case m.Meta != nil && d.maxDeliver > 0 && int(m.Meta.NumDelivered) >= d.maxDeliver:
					class = ClassExhausted
				default:
					continue
				}
				if perr := d.Publish(m.TraceContext(ctx), originalOf(m), class, err, first); perr != nil {
					errs[i] = failure.Transient(errors.Join(err, perr), 0)
					continue
				}
				errs[i] = fmt.Errorf("%w (%s): %w", ErrDeadLettered, class, err)
			}
			return errs
		}
	}
}

// maxDeliveriesAdvisory is JetStream's io.nats.jetstream.advisory.v1.max_deliver.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// WatchMaxDeliveries dead-letters messages that reached MaxDeliver without a verdict from
// the consumer — its process died or stalled past AckWait on the last delivery — from
// JetStream's MAX_DELIVERIES advisories, so that no message falls between stream and DLQ.
// It watches every consumer the service reads through: its durable on stream (EVENTS), its
// replay consumers there, and its redrive consumer on the dead-letter stream. When the
// ADVISORIES stream exists the advisories are read from it through a durable consumer
// shared by the replicas, so one that arrived while no replica was running is still
// handled; otherwise they are subscribed to directly. Call stop to stop watching.
func (d *DeadLetters) WatchMaxDeliveries(ctx context.Context, js jetstream.JetStream, stream string) (stop func(), err error) {
	const prefix = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."
	subjects := []string{prefix + stream + "." + d.consumer, prefix + d.stream + "." + RedriveName(d.consumer)}
	for slot := 1; slot <= ReplaySlots; slot++ {
		subjects = append(subjects, prefix+stream+"."+ReplayName(d.consumer, slot))
	}
	handle := func(data []byte) error { return d.deadLetterAdvised(js, stream, data) }
	if _, err := js.Stream(ctx, streams.Advisories); errors.Is(err, jetstream.ErrStreamNotFound) {
		var subs []*nats.Subscription
		unsubscribe := func() {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
		}
		for _, subj := range subjects {
			sub, err := js.Conn().Subscribe(subj, func(m *nats.Msg) {
				if err := handle(m.Data); err != nil {
					d.log.Error().Err(err).Msg("max deliveries advisory")
				}
			})
			if err != nil {
				unsubscribe()
				return nil, err
			}
			subs = append(subs, sub)
		}
		return unsubscribe, nil
	} else if err != nil {
		return nil, err
	}
	// The durable's name predates its watching replays and redrives too; keeping it keeps
	// its place in ADVISORIES across the upgrade.
	c, err := js.CreateOrUpdateConsumer(ctx, streams.Advisories, jetstream.ConsumerConfig{
		Durable:        "max-deliveries-" + stream + "-" + d.consumer,
		Description:    "dead-letters what " + d.consumer + ", its replays and its redrives never gave a verdict on",
		FilterSubjects: subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		if err := handle(m.Data()); err != nil {
			d.log.Error().Err(err).Msg("max deliveries advisory")
			_ = m.NakWithDelay(5 * time.Second)
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		return nil, err
	}
	return cc.Stop, nil
}

// deadLetterAdvised dead-letters the message a MAX_DELIVERIES advisory names: an event of
// events (delivered by the live consumer or a replay) or a redrive message of the
// dead-letter stream, whose dead letter it then replaces. A message already gone from its
// stream (aged out, or acknowledged after all) is not an error.
func (d *DeadLetters) deadLetterAdvised(js jetstream.JetStream, events string, data []byte) error {
	var a maxDeliveriesAdvisory
	if err := json.Unmarshal(data, &a); err != nil {
		return nil // not an advisory we can act on; nothing to retry
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, a.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", a.Stream, err)
	}
	raw, err := s.GetMsg(ctx, a.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	o := Original{Subject: raw.Subject, Header: raw.Header, Data: raw.Data, Stream: a.Stream, Sequence: a.StreamSeq, Attempts: a.Deliveries}
	redrive := a.Stream == d.stream
	switch {
	case redrive:
		o = redrivenOriginal(o, raw.Header, a.StreamSeq)
	case a.Consumer != d.consumer: // a replay: its id, as the consumer would have named it
		o.dedupSuffix = ":" + a.Consumer
		if c, err := js.Consumer(ctx, events, a.Consumer); err == nil {
			if w, ok := ReadReplayWindow(c.CachedInfo().Config); ok {
				o.dedupSuffix = ":" + w.ID
			}
		}
	}
	if o.EventID == "" {
		var ce event.CloudEvent
		_ = json.Unmarshal(raw.Data, &ce)
		o.EventID = ce.ID
	}
	first := time.Time{}
	if d.ledger != nil && o.EventID != "" {
		first, _ = d.ledger.FirstFailure(ctx, o.EventID, time.Now())
	}
	cause := fmt.Errorf("reached MaxDeliver (%d deliveries) without being acknowledged: the consumer crashed or stalled past AckWait", a.Deliveries)
	if err := d.Publish(ctx, o, ClassExhausted, cause, first); err != nil {
		return err
	}
	if redrive {
		letter, _ := strconv.ParseUint(raw.Header.Get(HeaderRedriveOf), 10, 64)
		removeRedrive(js, d.stream, letter, a.StreamSeq, d.log)
	}
	return nil
}

// StoredDeadLetter is a dead letter read back from DLQ: where it is, its provenance, and the
// original message (Header holds the provenance headers too).
type StoredDeadLetter struct {
	Sequence     uint64      `json:"seq"` // in DLQ
	Subject      string      `json:"subject"`
	Original     string      `json:"original_subject"`
	OriginalSeq  uint64      `json:"original_seq"`
	Consumer     string      `json:"consumer"`
	Class        string      `json:"class"`
	Error        string      `json:"error"`
	Attempts     int         `json:"attempts"`
	FirstFailure time.Time   `json:"first_failure"`
	LastFailure  time.Time   `json:"last_failure"`
	Header       nats.Header `json:"-"`
	Data         []byte      `json:"-"`
}

// ReadDeadLetter reads the dead letter stored at DLQ sequence seq on subject with headers h
// and data. Provenance a header lacks is left zero.
func ReadDeadLetter(seq uint64, subject string, h nats.Header, data []byte) StoredDeadLetter {
	d := StoredDeadLetter{Sequence: seq, Subject: subject, Original: h.Get(HeaderDLQSubject), Consumer: h.Get(HeaderDLQConsumer),
		Class: h.Get(HeaderDLQClass), Error: h.Get(HeaderDLQError), Header: h, Data: data}
	d.OriginalSeq, _ = strconv.ParseUint(h.Get(HeaderDLQSequence), 10, 64)
	d.Attempts, _ = strconv.Atoi(h.Get(HeaderDLQAttempts))
	d.FirstFailure, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderDLQFirstFailure))
	d.LastFailure, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderDLQLastFailure))
	return d
}

// RedriveMsg is the message that re-delivers d to the consumer that failed it, and only to
// it: a copy of d, provenance and all, on redrive.<consumer>.<original subject> beside it in
// DLQ, which that consumer reads. The consumer removes d and the copy once it has settled
// the message (applied, or dead-lettered anew). A dead letter without its consumer or
// original subject cannot be redriven.
func (d StoredDeadLetter) RedriveMsg() (*nats.Msg, error) {
	if d.Consumer == "" || d.Original == "" {
		return nil, fmt.Errorf("dead letter %d has no consumer or original subject", d.Sequence)
	}
	h := CarriedHeader(d.Header)
	h.Set(HeaderRedriveOf, strconv.FormatUint(d.Sequence, 10))
	h.Set(jetstream.MsgIDHeader, "redrive:"+strconv.FormatUint(d.Sequence, 10))
	return &nats.Msg{Subject: RedriveSubject(d.Consumer, d.Original), Header: h, Data: d.Data}, nil
}
