package consumer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/fieldstream/fieldstream/pkg/event"
)

// DefaultLedgerTTL is how long a consumer remembers an applied event: as long as EVENTS
// keeps it, so a replay of anything still in the stream is recognized.
const DefaultLedgerTTL = 7 * 24 * time.Hour

// LedgerBucket is the KV bucket of consumer name's ledger.
func LedgerBucket(consumer string) string { return "fieldstream_ledger_" + consumer }

// Ledger is one consumer's memory in a JetStream KV bucket, shared by every replica of the
// consumer and surviving restarts. Its keys:
//
//	version.<tenant>.<entity>.<id>  the newest change of the entity claimed: its time, EVENTS
//	                                sequence and event id, and the batch that claimed it
//	batch.<batch id>                written once a batch's claimed events were handled:
//	                                which of them were not applied
//	failed.<digest of event id>     when an event first failed
//	applied-seqs                    the EVENTS sequences applied, as intervals (a cache)
//	applied.<digest of event id>    an applied event, in the format before batches: read
//	                                while such entries live, never written
//
// An event counts as applied when its entity's record names it and the batch that claimed
// it says it was applied. A batch of events costs two writes to the ledger whatever its
// size — one atomic batch of claims, each conditional on the record it read, and one marker
// — and one batched read before them. Safe for concurrent use.
type Ledger struct {
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	bucket string
	stream string
	recent *recentSet // recently applied ids; nil unless Remember was called
	seqs   seqSet     // EVENTS sequences applied, persisted under seqsKey
	dirty  atomic.Bool
	last   atomic.Int64 // when the sequences were last stored, Unix nanoseconds
	epoch  time.Time    // EVENTS' creation time: sequences only mean something within one
	locks  entityLocks
	marks  batchMarks
	// oneByOne is set for LedgerPipelined, or once the ledger's stream refused an atomic
	// batch: claims are then published one by one (pipelined).
	oneByOne atomic.Bool
}

// seqsKey holds the applied EVENTS sequences, for the EVENTS stream created at a time.
const seqsKey = "applied-seqs"

// maxStoredIntervals bounds the stored record (~100 KiB); dead letters and skipped events
// leave holes, and a consumer with very many keeps only its most recent intervals.
const maxStoredIntervals = 4096

// flushEvery is how often, at most, the applied sequences are stored.
const flushEvery = time.Second

type appliedSeqs struct {
	StreamCreated time.Time   `json:"stream_created"`
	Intervals     [][2]uint64 `json:"intervals"`
}

// OpenLedger opens (creating if needed) the ledger of consumer name with replicas replicas
// (0: one); entries expire after ttl (DefaultLedgerTTL if 0). It lets the bucket's stream
// take atomic batches, which the ledger writes.
func OpenLedger(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration, replicas int) (*Ledger, error) {
	if ttl == 0 {
		ttl = DefaultLedgerTTL
	}
	bucket := LedgerBucket(name)
	cfg := jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "fieldstream consumer " + name + ": newest version claimed per entity, handled batches, first failures",
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
	l := &Ledger{js: js, bucket: bucket, stream: "KV_" + bucket}
	s, err := js.Stream(ctx, l.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) || err == nil && !ledgerConfigured(s.CachedInfo().Config, ttl, replicas) {
		// Created, or updated where its TTL or replicas changed. (An update to the bucket as
		// it is would switch atomic batches off again.)
		if _, err = js.CreateOrUpdateKeyValue(ctx, cfg); err == nil {
			s, err = js.Stream(ctx, l.stream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", name, err)
	}
	if sc := s.CachedInfo().Config; !sc.AllowAtomicPublish {
		sc.AllowAtomicPublish = true
		if _, err := js.UpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("ledger %s: allow atomic batches: %w", name, err)
		}
	}
	if l.kv, err = js.KeyValue(ctx, bucket); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", name, err)
	}
	return l, nil
}

func ledgerConfigured(sc jetstream.StreamConfig, ttl time.Duration, replicas int) bool {
	return sc.MaxAge == ttl && (replicas <= 0 || sc.Replicas == replicas)
}

// TrackSequences makes the ledger also remember which EVENTS sequences it applied, and loads
// what it stored before — if stream is still the stream it was stored for (a stream deleted
// and created again restarts its sequences, so its old record is dropped). A replayed or
// redelivered event whose sequence is known is then skipped without a lookup.
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

// recentlyApplied reports whether the event was applied, as far as memory knows.
func (l *Ledger) recentlyApplied(eventID string) bool {
	return l.recent != nil && eventID != "" && l.recent.has(digest(eventID))
}

// Flush stores the applied sequences if they changed since they were last stored.
func (l *Ledger) Flush(ctx context.Context) { l.flushSequences(ctx, true) }

// flushSequences stores the applied sequences if they changed — at most every flushEvery
// unless now — merged with what other replicas stored. Losing a race only costs a later
// replay some ledger lookups.
func (l *Ledger) flushSequences(ctx context.Context, now bool) {
	if l.epoch.IsZero() || !l.dirty.Load() {
		return
	}
	if !now && time.Since(time.Unix(0, l.last.Load())) < flushEvery {
		return
	}
	l.dirty.Store(false)
	l.last.Store(time.Now().UnixNano())
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

// subject is the KV subject of key.
func (l *Ledger) subject(key string) string { return "$KV." + l.bucket + "." + key }

// version orders the events of one entity: by the time of the change, then by stream
// sequence.
type version struct {
	Time int64  `json:"time"` // Unix nanoseconds of the change (CloudEvents time)
	Seq  uint64 `json:"seq"`  // EVENTS sequence
}

func (v version) olderThan(o version) bool {
	return v.Time < o.Time || (v.Time == o.Time && v.Seq < o.Seq)
}

// entityRecord is the ledger's record of one entity: the newest change claimed.
type entityRecord struct {
	version
	ID    string `json:"id"`              // event id
	Batch string `json:"batch,omitempty"` // the claiming batch; "" in the format before batches

	exists  bool   // the key holds a record
	rev     uint64 // the key's last stream sequence (a deletion's too); 0: none
	applied bool   // the event ID names was applied (resolved by resolve)
}

// names reports whether the record is of event id.
func (r entityRecord) names(id string) bool { return r.exists && id != "" && r.ID == id }

// versionKey is the ledger key of an entity: version.<tenant>.<entity>.<id>.
func versionKey(entity string) string { return "version." + entity }

// entityOf returns <tenant>.<entity>.<id> of an EVENTS subject.
func entityOf(subject string) (string, bool) {
	tenant, entity, id, _, ok := event.SubjectParts(subject)
	if !ok {
		return "", false
	}
	return tenant + "." + entity + "." + id, true
}

// maxMultiGet is the most subjects asked for in one batched direct get (the server answers
// at most 1024 messages to one).
const maxMultiGet = 1000

// lastMsgs returns the last message of each subject that has one, by subject: a batched
// direct get per maxMultiGet subjects, the requests of one call in parallel. A server
// without batched direct get is asked subject by subject.
func (l *Ledger) lastMsgs(ctx context.Context, subjects []string) (map[string]*jetstream.RawStreamMsg, error) {
	out := make(map[string]*jetstream.RawStreamMsg, len(subjects))
	if len(subjects) == 0 {
		return out, nil
	}
	n := (len(subjects) + maxMultiGet - 1) / maxMultiGet
	found := make([][]*jetstream.RawStreamMsg, n)
	errs := make([]error, n)
	forEach(n, func(c int) {
		part := subjects[c*maxMultiGet : min((c+1)*maxMultiGet, len(subjects))]
		msgs, err := jetstreamext.GetLastMsgsFor(ctx, l.js, l.stream, part)
		if err != nil {
			errs[c] = err
			return
		}
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				errs[c] = err
				return
			}
			found[c] = append(found[c], m)
		}
	})
	for c := range n {
		if errors.Is(errs[c], jetstreamext.ErrBatchUnsupported) {
			return l.lastMsgsOneByOne(ctx, subjects)
		}
		if errs[c] != nil {
			return nil, errs[c]
		}
		for _, m := range found[c] {
			out[m.Subject] = m
		}
	}
	return out, nil
}

func (l *Ledger) lastMsgsOneByOne(ctx context.Context, subjects []string) (map[string]*jetstream.RawStreamMsg, error) {
	s, err := l.js.Stream(ctx, l.stream)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*jetstream.RawStreamMsg, len(subjects))
	for _, subj := range subjects {
		m, err := s.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[subj] = m
	}
	return out, nil
}

// deleted reports whether a KV message marks its key deleted.
func deleted(m *jetstream.RawStreamMsg) bool {
	op := m.Header.Get("KV-Operation")
	return op == "DEL" || op == "PURGE"
}

// readRecords reads the records of entities (keys of entityOf) and resolves whether the
// event each names was applied.
func (l *Ledger) readRecords(ctx context.Context, entities []string) (map[string]entityRecord, error) {
	subjects := make([]string, 0, len(entities))
	seen := make(map[string]bool, len(entities))
	for _, e := range entities {
		if !seen[e] {
			seen[e] = true
			subjects = append(subjects, l.subject(versionKey(e)))
		}
	}
	msgs, err := l.lastMsgs(ctx, subjects)
	if err != nil {
		return nil, err
	}
	recs := make(map[string]entityRecord, len(seen))
	for e := range seen {
		var r entityRecord
		if m := msgs[l.subject(versionKey(e))]; m != nil {
			r.rev = m.Sequence
			r.exists = !deleted(m) && json.Unmarshal(m.Data, &r) == nil
		}
		recs[e] = r
	}
	return recs, l.resolve(ctx, recs)
}

// resolve sets applied on every record: its batch's marker says its event was applied (or,
// in the format before batches, an applied entry names it).
func (l *Ledger) resolve(ctx context.Context, recs map[string]entityRecord) error {
	var ask []string
	asked := map[string]bool{}
	for _, r := range recs {
		var subj string
		switch {
		case !r.exists:
			continue
		case r.Batch == "":
			subj = l.subject(eventKey("applied.", r.ID))
		case l.marks.known(r.Batch):
			continue
		default:
			subj = l.subject(batchKey(r.Batch))
		}
		if !asked[subj] {
			asked[subj] = true
			ask = append(ask, subj)
		}
	}
	msgs, err := l.lastMsgs(ctx, ask)
	if err != nil {
		return err
	}
	for subj, m := range msgs {
		if id, ok := strings.CutPrefix(subj, l.subject("batch.")); ok && !deleted(m) {
			var mark batchMark
			if json.Unmarshal(m.Data, &mark) == nil {
				l.marks.add(id, mark.Failed)
			}
		}
	}
	for e, r := range recs {
		switch {
		case !r.exists:
		case r.Batch == "":
			m := msgs[l.subject(eventKey("applied.", r.ID))]
			r.applied = m != nil && !deleted(m)
		default:
			r.applied = l.marks.applied(r.Batch, r.ID)
		}
		recs[e] = r
	}
	return nil
}

// AppliedEvent reports whether the ledger records the event with id eventID, stored on
// EVENTS subject subject, as applied: as the newest change of its entity, applied. (An
// event superseded by a newer change of its entity is not reported applied.)
func (l *Ledger) AppliedEvent(ctx context.Context, subject, eventID string) (bool, error) {
	e, ok := entityOf(subject)
	if !ok {
		return false, fmt.Errorf("ledger: %q is no event subject", subject)
	}
	recs, err := l.readRecords(ctx, []string{e})
	if err != nil {
		return false, err
	}
	r := recs[e]
	return r.names(eventID) && r.applied, nil
}

// claim is one entity's newest change of a batch, to be recorded as claimed by the batch if
// the entity's record is still at rev.
type claim struct {
	entity string
	rec    entityRecord // what is to be stored
	rev    uint64       // the record read
}

// LedgerWrites is how a ledger writes the claims of a batch: as one atomic batch
// (LedgerAtomic), which a server that fsyncs every write (sync_interval: always, as
// production runs) stores with one fsync; or one by one, pipelined (LedgerPipelined), which
// costs such a server one fsync each but is faster on one that does not (nats-server's
// default, an fsync every two minutes), where an atomic batch costs more than its messages
// published singly. Either way each claim is conditional on the record read.
type LedgerWrites string

// How the ledger writes claims.
const (
	LedgerAtomic    LedgerWrites = "atomic"
	LedgerPipelined LedgerWrites = "pipelined"
)

func (w *LedgerWrites) String() string { return string(*w) }

// Set implements flag.Value.
func (w *LedgerWrites) Set(s string) error {
	switch LedgerWrites(s) {
	case LedgerAtomic, LedgerPipelined:
		*w = LedgerWrites(s)
		return nil
	}
	return fmt.Errorf("want %s or %s", LedgerAtomic, LedgerPipelined)
}

// WriteClaims sets how the ledger writes claims (LedgerAtomic unless called).
func (l *Ledger) WriteClaims(w LedgerWrites) { l.oneByOne.Store(w == LedgerPipelined) }

// atomicFrom is the fewest claims written as one atomic batch: below it, publishing them
// one by one (pipelined) costs less than the server's setting up of a batch.
const atomicFrom = 8

// maxAtomic is the most messages in one atomic batch (nats-server's default limit).
const maxAtomic = 1000

// writeClaims stores claims, each only if its entity's record is still the one read, and
// returns the entities whose record had changed (another consumer claimed meanwhile). In
// atomic batches the server refuses a whole batch for one changed record: every entity of
// such a batch is returned, and those unchanged are claimed on the next attempt.
func (l *Ledger) writeClaims(ctx context.Context, claims []claim, atomicOK bool) (conflicts []string, err error) {
	if !atomicOK || len(claims) < atomicFrom || l.oneByOne.Load() {
		return l.writeClaimsOneByOne(ctx, claims)
	}
	for start := 0; start < len(claims); start += maxAtomic {
		part := claims[start:min(start+maxAtomic, len(claims))]
		msgs := make([]*nats.Msg, len(part))
		for i, c := range part {
			msgs[i] = l.claimMsg(c)
		}
		_, err := jetstreamext.PublishMsgBatch(ctx, l.js, msgs, jetstreamext.BatchFlowControl{})
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
		case errors.As(err, &apiErr) && wrongLastSequence(apiErr.ErrorCode):
			for _, c := range part {
				conflicts = append(conflicts, c.entity)
			}
		case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishNotEnabled ||
			apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishExceedsLimit ||
			apiErr.ErrorCode == jetstreamext.JSErrCodeAtomicPublishTooManyInflight):
			if apiErr.ErrorCode != jetstreamext.JSErrCodeAtomicPublishTooManyInflight {
				l.oneByOne.Store(true) // an older server, or the bucket changed by hand
			}
			more, err := l.writeClaimsOneByOne(ctx, part)
			if err != nil {
				return nil, err
			}
			conflicts = append(conflicts, more...)
		default:
			return nil, fmt.Errorf("claim %d entities: %w", len(part), err)
		}
	}
	return conflicts, nil
}

func (l *Ledger) writeClaimsOneByOne(ctx context.Context, claims []claim) (conflicts []string, err error) {
	futures := make([]jetstream.PubAckFuture, len(claims))
	for i, c := range claims {
		if futures[i], err = l.js.PublishMsgAsync(l.claimMsg(c)); err != nil {
			return nil, fmt.Errorf("claim %s: %w", c.entity, err)
		}
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && wrongLastSequence(apiErr.ErrorCode) {
				conflicts = append(conflicts, claims[i].entity)
				continue
			}
			return nil, fmt.Errorf("claim %s: %w", claims[i].entity, err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return conflicts, nil
}

func wrongLastSequence(code jetstream.ErrorCode) bool {
	return code == jetstream.JSErrCodeStreamWrongLastSequence || code == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

func (l *Ledger) claimMsg(c claim) *nats.Msg {
	value, _ := json.Marshal(c.rec)
	h := nats.Header{}
	h.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(c.rev, 10))
	return &nats.Msg{Subject: l.subject(versionKey(c.entity)), Header: h, Data: value}
}

// batchMark is the ledger's record of a handled batch: the events it claimed and did not
// apply. Every other event it claimed was applied.
type batchMark struct {
	Failed []string `json:"failed,omitempty"`
}

func batchKey(batch string) string { return "batch." + batch }

// markHandled records that batch handled its claims and that the events failed were not
// applied.
func (l *Ledger) markHandled(ctx context.Context, batch string, failed []string) error {
	value, _ := json.Marshal(batchMark{Failed: failed})
	if _, err := l.kv.Put(ctx, batchKey(batch), value); err != nil {
		return err
	}
	l.marks.add(batch, failed)
	return nil
}

// noteApplied remembers in memory that the event was applied at EVENTS sequence seq.
func (l *Ledger) noteApplied(eventID string, seq uint64) {
	if l.recent != nil && eventID != "" {
		l.recent.add(digest(eventID))
	}
	if seq != 0 && !l.epoch.IsZero() && !l.seqs.has(seq) {
		l.seqs.add(seq)
		l.dirty.Store(true)
	}
}

// batchMarks remembers the markers of recent batches, so that most records resolve without
// a second read. Safe for concurrent use.
type batchMarks struct {
	mu    sync.Mutex
	marks map[string]map[string]bool // batch → events it did not apply
	order []string
}

// maxMarks bounds the markers remembered.
const maxMarks = 4096

func (b *batchMarks) add(batch string, failed []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.marks == nil {
		b.marks = map[string]map[string]bool{}
	}
	if _, ok := b.marks[batch]; ok {
		return
	}
	f := make(map[string]bool, len(failed))
	for _, id := range failed {
		f[id] = true
	}
	b.marks[batch] = f
	b.order = append(b.order, batch)
	if len(b.order) > maxMarks {
		delete(b.marks, b.order[0])
		b.order = b.order[1:]
	}
}

func (b *batchMarks) known(batch string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.marks[batch]
	return ok
}

// applied reports whether batch is known handled and applied the event id.
func (b *batchMarks) applied(batch, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	failed, ok := b.marks[batch]
	return ok && !failed[id]
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
