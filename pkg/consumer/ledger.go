package consumer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// DefaultLedgerTTL is how long a consumer remembers an applied event: as long as EVENTS
// keeps it, so a replay of anything still in the stream is recognized.
const DefaultLedgerTTL = 7 * 24 * time.Hour

// LedgerBucket is the KV bucket of consumer name's ledger.
func LedgerBucket(consumer string) string { return "fieldstream_ledger_" + consumer }

// Ledger is one consumer's memory in a JetStream KV bucket: which events it applied, when an
// event first failed, and the newest version of each entity it applied. It is shared by every
// replica of the consumer and survives restarts. Safe for concurrent use.
type Ledger struct {
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	bucket string
	recent *recentSet // recently applied ids; nil unless Remember was called
	seqs   seqSet     // EVENTS sequences applied, persisted under seqsKey
	dirty  atomic.Bool
	epoch  time.Time // EVENTS' creation time: sequences only mean something within one
}

// seqsKey holds the applied EVENTS sequences, for the EVENTS stream created at a time.
const seqsKey = "applied-seqs"

// maxStoredIntervals bounds the stored record (~100 KiB); dead letters and skipped events
// leave holes, and a consumer with very many keeps only its most recent intervals.
const maxStoredIntervals = 4096

type appliedSeqs struct {
	StreamCreated time.Time   `json:"stream_created"`
	Intervals     [][2]uint64 `json:"intervals"`
}

// OpenLedger opens (creating if needed) the ledger of consumer name with replicas replicas
// (0: one); entries expire after ttl (DefaultLedgerTTL if 0).
func OpenLedger(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration, replicas int) (*Ledger, error) {
	if ttl == 0 {
		ttl = DefaultLedgerTTL
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      LedgerBucket(name),
		Description: "fieldstream consumer " + name + ": applied event ids, first failures, newest version per entity",
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", name, err)
	}
	return &Ledger{kv: kv, js: js, bucket: LedgerBucket(name)}, nil
}

// TrackSequences makes the ledger also remember which EVENTS sequences it applied, and loads
// what it stored before — if stream is still the stream it was stored for (a stream deleted
// and created again restarts its sequences, so its old record is dropped). A replayed or
// redelivered event whose sequence is known is then skipped without a lookup by id.
func (l *Ledger) TrackSequences(ctx context.Context, stream jetstream.Stream) error {
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	l.epoch = info.Created
	e, err := l.kv.Get(ctx, seqsKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var stored appliedSeqs
	if json.Unmarshal(e.Value(), &stored) == nil && stored.StreamCreated.Equal(l.epoch) {
		l.seqs.merge(stored.Intervals)
	}
	return nil
}

// AppliedSequence reports whether the event stored at EVENTS sequence seq was applied, as
// far as this ledger knows without a round trip (a miss proves nothing).
func (l *Ledger) AppliedSequence(seq uint64) bool {
	return seq != 0 && !l.epoch.IsZero() && l.seqs.has(seq)
}

// flushSequences stores the applied sequences if they changed, merged with what other
// replicas stored. Losing a race only costs a later replay some ledger lookups.
func (l *Ledger) flushSequences(ctx context.Context) {
	if l.epoch.IsZero() || !l.dirty.Swap(false) {
		return
	}
	for range 3 {
		e, err := l.kv.Get(ctx, seqsKey)
		var rev uint64
		if err == nil {
			var stored appliedSeqs
			if json.Unmarshal(e.Value(), &stored) == nil && stored.StreamCreated.Equal(l.epoch) {
				l.seqs.merge(stored.Intervals)
			}
			rev = e.Revision()
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			l.dirty.Store(true)
			return
		}
		l.seqs.mu.Lock()
		ivs := l.seqs.ivs
		if len(ivs) > maxStoredIntervals { // keep the record small: older holes cost lookups, not correctness
			ivs = ivs[len(ivs)-maxStoredIntervals:]
		}
		value, _ := json.Marshal(appliedSeqs{StreamCreated: l.epoch, Intervals: ivs})
		if len(l.seqs.ivs) > 4*maxStoredIntervals { // and memory bounded too
			l.seqs.ivs = append([][2]uint64(nil), ivs...)
		}
		l.seqs.mu.Unlock()
		if rev == 0 {
			_, err = l.kv.Create(ctx, seqsKey, value)
		} else {
			_, err = l.kv.Update(ctx, seqsKey, value, rev)
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			if err != nil {
				l.dirty.Store(true)
			}
			return
		}
	}
	l.dirty.Store(true)
}

func eventKey(prefix, eventID string) string {
	d := digest(eventID)
	return prefix + hex.EncodeToString(d[:])
}

func digest(eventID string) [16]byte {
	h := sha256.Sum256([]byte(eventID))
	return [16]byte(h[:16])
}

// Applied reports whether the event was applied.
func (l *Ledger) Applied(ctx context.Context, eventID string) (bool, error) {
	_, err := l.kv.Get(ctx, eventKey("applied.", eventID))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, err
	}
}

// AppliedMany reports which of the events were applied, asking JetStream for the ledger
// entries of 256 events per request (a batched direct get of the last message of many
// subjects), the requests of one call in parallel, instead of one request per event: it is
// what makes a replay of events already applied cheap. A server without batched direct get
// is asked one event at a time.
func (l *Ledger) AppliedMany(ctx context.Context, eventIDs []string) (map[string]bool, error) {
	all := make(map[string]bool, len(eventIDs))
	if l.recent != nil {
		unknown := eventIDs[:0:0]
		for _, id := range eventIDs {
			if l.recent.has(digest(id)) {
				all[id] = true
			} else {
				unknown = append(unknown, id)
			}
		}
		eventIDs = unknown
	}
	const chunk = 256
	n := (len(eventIDs) + chunk - 1) / chunk
	found := make([]map[string]bool, n)
	errs := make([]error, n)
	forEach(n, func(c int) {
		found[c], errs[c] = l.appliedChunk(ctx, eventIDs[c*chunk:min((c+1)*chunk, len(eventIDs))])
	})
	for c := range n {
		if errors.Is(errs[c], jetstreamext.ErrBatchUnsupported) {
			return l.appliedOneByOne(ctx, eventIDs)
		}
		if errs[c] != nil {
			return nil, errs[c]
		}
		for id := range found[c] {
			all[id] = true
			if l.recent != nil {
				l.recent.add(digest(id))
			}
		}
	}
	return all, nil
}

func (l *Ledger) appliedChunk(ctx context.Context, eventIDs []string) (map[string]bool, error) {
	found := make(map[string]bool, len(eventIDs))
	bySubject := make(map[string]string, len(eventIDs))
	subjects := make([]string, 0, len(eventIDs))
	for _, id := range eventIDs {
		subj := "$KV." + l.bucket + "." + eventKey("applied.", id)
		if _, dup := bySubject[subj]; !dup {
			subjects = append(subjects, subj)
		}
		bySubject[subj] = id
	}
	if len(subjects) == 0 {
		return found, nil
	}
	msgs, err := jetstreamext.GetLastMsgsFor(ctx, l.js, "KV_"+l.bucket, subjects)
	if err != nil {
		return nil, err
	}
	for m, err := range msgs {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return nil, err
		}
		if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			continue
		}
		found[bySubject[m.Subject]] = true
	}
	return found, nil
}

func (l *Ledger) appliedOneByOne(ctx context.Context, eventIDs []string) (map[string]bool, error) {
	found := make(map[string]bool, len(eventIDs))
	for _, id := range eventIDs {
		ok, err := l.Applied(ctx, id)
		if err != nil {
			return nil, err
		}
		found[id] = ok
	}
	return found, nil
}

// MarkApplied records that the event was applied. (A first-failure record it may have
// left expires with the ledger's TTL; it is never read again once the event is applied.)
func (l *Ledger) MarkApplied(ctx context.Context, eventID string, seq uint64) error {
	_, err := l.kv.Put(ctx, eventKey("applied.", eventID), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return err
	}
	if l.recent != nil {
		l.recent.add(digest(eventID))
	}
	if seq != 0 && !l.epoch.IsZero() {
		l.seqs.add(seq)
		l.dirty.Store(true)
	}
	return nil
}

// FirstFailure records now as the event's first failure unless one is recorded, and returns
// the recorded one.
func (l *Ledger) FirstFailure(ctx context.Context, eventID string, now time.Time) (time.Time, error) {
	key := eventKey("failed.", eventID)
	v := []byte(strconv.FormatInt(now.UnixNano(), 10))
	if _, err := l.kv.Create(ctx, key, v); err == nil {
		return now, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return now, err
	}
	e, err := l.kv.Get(ctx, key)
	if err != nil {
		return now, err
	}
	n, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return now, nil
	}
	return time.Unix(0, n), nil
}

// version orders the events of one entity: by the time of the change, then by stream
// sequence.
type version struct {
	Time int64  `json:"time"` // Unix nanoseconds of the change (CloudEvents time)
	Seq  uint64 `json:"seq"`  // EVENTS sequence
	ID   string `json:"id"`   // event id
}

func (v version) olderThan(o version) bool {
	return v.Time < o.Time || (v.Time == o.Time && v.Seq < o.Seq)
}

// claim makes m the newest version of its entity unless a newer event of that entity was
// already claimed, in which case it returns stale = true. Claiming before applying keeps
// replicas that race on one entity from applying an older change after a newer one. An
// event that claimed before (a redelivery of it) may apply again.
func (l *Ledger) claim(ctx context.Context, m *Message) (stale bool, err error) {
	ev := m.Event
	key := "version." + ev.Tenant + "." + ev.Entity + "." + ev.EntityID
	mine := version{Time: ev.Time.UnixNano(), Seq: m.EventsSequence(), ID: ev.ID}
	val, _ := json.Marshal(mine)
	for range 10 {
		e, err := l.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := l.kv.Create(ctx, key, val); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			} else {
				return false, err
			}
		}
		if err != nil {
			return false, err
		}
		var cur version
		if json.Unmarshal(e.Value(), &cur) == nil {
			if cur.ID == mine.ID {
				return false, nil
			}
			if mine.olderThan(cur) {
				return true, nil
			}
			// A polled event restates a change; it applies only if it is strictly newer
			// than what was applied, so a poll never repeats a delivered webhook.
			if event.OriginOf(m.Msg.Headers()) == event.OriginPoll && mine.Time <= cur.Time {
				return true, nil
			}
		}
		if _, err := l.kv.Update(ctx, key, val, e.Revision()); errors.Is(err, jetstream.ErrKeyExists) {
			continue
		} else {
			return false, err
		}
	}
	return false, fmt.Errorf("claim %s: too much contention", key)
}
