package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nuid"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
)

// Idempotent keeps from the handler what must not be applied, and records what it applies:
//   - an event already applied (redelivered, replayed or re-published) gets ErrAlreadyApplied;
//   - an event older than a change of its entity already claimed — by this consumer's
//     replicas, its replays, or another event of the batch — gets ErrSuperseded: an older
//     update never overwrites a newer one, and of several changes of one entity in a batch
//     only the newest is applied;
//   - a polled event applies only if strictly newer than what was claimed.
//
// The consumer acknowledges both without applying them. An operator's forced replay applies
// events the ledger records as applied, but still never one older than a change claimed.
//
// Per batch, Idempotent reads the ledger once (batched), claims the newest change of each
// entity in one atomic write conditional on what it read — a replica that claimed meanwhile
// makes it read again — hands the claimed events to next, and records in one more write
// which of them were applied: the ledger's round trips per batch, not per event. A ledger
// that cannot be read or written is a transient error: the event waits rather than risks
// applying twice. An event applied but not recorded (the record failed, or the process died
// first) is applied again when redelivered; the sinks, idempotent by event id, turn it away.
//
// Within a process the consumers sharing the ledger (a service's live consumer, replays and
// redrives) take turns per entity: a batch works on the entities no other batch holds, then
// on the rest once they are released.
//
// An event is looked up by its entity, read from its subject, and by the id its headers
// carry (Message.ID), so a replay of applied events costs no decoding; what Idempotent
// hands next is decoded.
func Idempotent(l *Ledger) Middleware {
	return func(next BatchHandler) BatchHandler {
		return func(ctx context.Context, batch []*Message) []error {
			errs := make([]error, len(batch))
			entities := make([]string, len(batch))
			for i, m := range batch {
				if !forcedReplay(m) && (l.AppliedSequence(m.EventsSequence()) || l.recentlyApplied(m.ID())) {
					errs[i] = ErrAlreadyApplied
					continue
				}
				entities[i], errs[i] = entityOfMessage(m)
			}
			todo := pending(errs)
			for len(todo) > 0 {
				mine, rest, released := l.locks.lockFree(entities, todo)
				if len(mine) == 0 {
					if err := waitFor(ctx, released, batch, rest); err != nil {
						for _, i := range rest {
							errs[i] = err
						}
						return errs
					}
					continue
				}
				l.handleLocked(ctx, next, batch, entities, mine, errs)
				l.locks.unlock(entities, mine)
				todo = rest
			}
			l.flushSequences(context.WithoutCancel(ctx), false)
			return errs
		}
	}
}

// entityOfMessage is the entity key of m (<tenant>.<entity>.<id>), read from its subject,
// or from its envelope for a subject that is not an event's.
func entityOfMessage(m *Message) (string, error) {
	if e, ok := entityOf(m.Subject()); ok {
		return e, nil
	}
	if err := m.decodeEvent(); err != nil {
		return "", err
	}
	subj, err := event.Subject(m.Event.Tenant, m.Event.Entity, m.Event.EntityID, "x")
	if err != nil {
		return "", failure.Permanent(fmt.Errorf("event %s names no entity: %w", m.Event.ID, err))
	}
	e, _ := entityOf(subj)
	return e, nil
}

// waitFor waits until released is closed, telling JetStream that the messages at idx are
// in progress meanwhile, or until ctx ends (a transient error).
func waitFor(ctx context.Context, released <-chan struct{}, batch []*Message, idx []int) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-released:
			return nil
		case <-t.C:
			for _, i := range idx {
				_ = batch[i].Msg.InProgress()
			}
		case <-ctx.Done():
			return failure.Transient(fmt.Errorf("waiting for an entity: %w", ctx.Err()), 0)
		}
	}
}

// maxClaimRounds bounds the claims of one batch that lose a race to another replica.
const maxClaimRounds = 5

// handleLocked settles the messages at idx, whose entities the caller holds: skips what the
// ledger has, claims the newest change of each entity, hands the claimed ones to next and
// records which were applied.
func (l *Ledger) handleLocked(ctx context.Context, next BatchHandler, batch []*Message, entities []string, idx []int, errs []error) {
	recs, err := l.readRecords(ctx, pick(entities, idx))
	if err != nil {
		setAll(errs, idx, ledgerError(err))
		return
	}
	// Applied already, by the id in the headers: no decoding needed.
	for _, i := range idx {
		if m := batch[i]; !forcedReplay(m) && recs[entities[i]].names(m.ID()) && recs[entities[i]].applied {
			errs[i] = ErrAlreadyApplied
			l.noteApplied(m.ID(), m.EventsSequence())
		}
	}
	// Decode the rest; an event republished under another message id is known by the id in
	// its envelope.
	decodeAll(batch, idx, errs)
	for _, i := range idx {
		if m := batch[i]; errs[i] == nil && !forcedReplay(m) && recs[entities[i]].names(m.Event.ID) && recs[entities[i]].applied {
			errs[i] = ErrAlreadyApplied
		}
	}
	handling := nuid.Next()
	var claimed []int
	for round := 1; ; round++ {
		claims, winners := decideClaims(batch, entities, idx, errs, recs, handling)
		conflicts, err := l.writeClaims(ctx, claims, round <= 2)
		if err != nil {
			setAll(errs, winners, ledgerError(err))
			return
		}
		if len(conflicts) == 0 {
			claimed = winners
			break
		}
		lost := map[string]bool{}
		for _, e := range conflicts {
			lost[e] = true
		}
		for _, c := range claims {
			if !lost[c.entity] { // stored: the next round knows it is claimed
				r := c.rec
				r.exists = true
				recs[c.entity] = r
			}
		}
		if round == maxClaimRounds {
			for _, i := range winners {
				if lost[entities[i]] {
					errs[i] = failure.Transient(fmt.Errorf("ledger: entity %s claimed by others %d times in a row", entities[i], round), 0)
				} else {
					claimed = append(claimed, i)
				}
			}
			break
		}
		// Another replica claimed some of these entities: read them again and decide anew.
		again, err := l.readRecords(ctx, conflicts)
		if err != nil {
			setAll(errs, winners, ledgerError(err))
			return
		}
		for e, r := range again {
			recs[e] = r
		}
	}
	if len(claimed) == 0 {
		return
	}
	passOn(ctx, next, batch, claimed, errs)
	l.recordHandled(ctx, handling, batch, claimed, errs)
}

// decideClaims decides, per entity, between the messages at idx still pending: the newest
// change is claimed (unless the ledger holds a newer one, or a polled event restates what is
// claimed); the others are superseded. It returns the claims to write and the messages that
// make them, in batch order. Entities already claimed by this handling (an earlier round)
// need no write.
func decideClaims(batch []*Message, entities []string, idx []int, errs []error, recs map[string]entityRecord, handling string) ([]claim, []int) {
	newest := map[string]int{}
	for _, i := range idx {
		if errs[i] != nil {
			continue
		}
		j, ok := newest[entities[i]]
		if !ok || versionOf(batch[j]).olderThan(versionOf(batch[i])) {
			newest[entities[i]] = i
		}
	}
	var claims []claim
	var winners []int
	for _, i := range idx {
		if errs[i] != nil {
			continue
		}
		e, m := entities[i], batch[i]
		if newest[e] != i {
			errs[i] = ErrSuperseded
			continue
		}
		r, mine := recs[e], versionOf(m)
		switch {
		case r.exists && r.Batch == handling && r.ID == m.Event.ID:
			winners = append(winners, i) // claimed in an earlier round
			continue
		case r.names(m.Event.ID):
			// Claimed before and not recorded applied (it failed, or its process died after
			// claiming), or forced: claim it again for this handling.
		case r.exists && mine.olderThan(r.version):
			errs[i] = ErrSuperseded
			continue
		case r.exists && event.OriginOf(m.Msg.Headers()) == event.OriginPoll && mine.Time <= r.Time:
			// A polled event restates a change; it applies only if it is strictly newer
			// than what was claimed, so a poll never repeats a delivered webhook.
			errs[i] = ErrSuperseded
			continue
		}
		claims = append(claims, claim{entity: e, rev: r.rev, rec: entityRecord{version: mine, ID: m.Event.ID, Batch: handling}})
		winners = append(winners, i)
	}
	return claims, winners
}

// decodeAll decodes the messages at idx still pending, on every core.
func decodeAll(batch []*Message, idx []int, errs []error) {
	const chunk = 64
	n := (len(idx) + chunk - 1) / chunk
	forEach(n, func(c int) {
		for _, i := range idx[c*chunk : min((c+1)*chunk, len(idx))] {
			if errs[i] == nil {
				errs[i] = batch[i].decodeEvent()
			}
		}
	})
}

func versionOf(m *Message) version {
	return version{Time: m.Event.Time.UnixNano(), Seq: m.EventsSequence()}
}

// recordHandled records that handling applied the messages at idx whose error is nil and
// not the others. What was applied is recorded even while the consumer stops (ctx
// cancelled by a drain), within recordWithin. If the record cannot be written, the applied
// messages get a transient error: their redelivery applies them again, which the sinks,
// idempotent by event id, turn away.
func (l *Ledger) recordHandled(ctx context.Context, handling string, batch []*Message, idx []int, errs []error) {
	var failed []string
	applied := 0
	for _, i := range idx {
		if errs[i] != nil {
			failed = append(failed, batch[i].Event.ID)
		} else {
			applied++
		}
	}
	if applied == 0 {
		return // no marker: nothing the batch claimed counts as applied
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordWithin)
	defer cancel()
	if err := l.markHandled(rctx, handling, failed); err != nil {
		err = failure.Transient(fmt.Errorf("ledger: record applied: %w", err), 0)
		for _, i := range idx {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return
	}
	for _, i := range idx {
		if errs[i] == nil {
			l.noteApplied(batch[i].Event.ID, batch[i].EventsSequence())
		}
	}
}

// recordWithin bounds the ledger write that records a batch's applied events.
const recordWithin = 10 * time.Second

func pick(s []string, idx []int) []string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = s[i]
	}
	return out
}

func setAll(errs []error, idx []int, err error) {
	for _, i := range idx {
		if errs[i] == nil {
			errs[i] = err
		}
	}
}

// forcedReplay reports whether m is an operator's forced replay, which is applied whatever
// the ledger says it applied.
func forcedReplay(m *Message) bool { return m.Replay != nil && m.Replay.Force }

// ledgerError is a failure to read or write the ledger: transient, the message waits.
func ledgerError(err error) error {
	if errors.Is(err, context.Canceled) {
		return failure.Transient(err, 0)
	}
	return failure.Transient(fmt.Errorf("ledger: %w", err), 0)
}
