package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/services/poller"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/assetsys"
	"github.com/fieldstream/fieldstream/services/simulator/paycom"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/services/simulator/workordersys"
)

// Sinks, by the consumer service that writes to them.
const (
	SinkAssets     = "assets"
	SinkWorkOrders = "workorders"
	SinkPayroll    = "payroll"
)

// Observations are what a campaign gathers once the system has settled: what the simulated
// ServiceTrade sent and heard back, what JetStream holds, and what each sink applied.
type Observations struct {
	Tenant      string
	Deliveries  []simulator.DeliveryRecord
	SenderStats servicetrade.Stats
	// Stored counts the messages in EVENTS per Nats-Msg-Id (the event id).
	Stored map[string]int
	// DeadLetters lists, per event id, the consumers whose dead letter DLQ holds;
	// DeadLetterMsgs counts DLQ's messages.
	DeadLetters    map[string][]string
	DeadLetterMsgs int
	Assets         assetsys.Record
	WorkOrders     workordersys.Record
	Payroll        paycom.Record
	Account        simulator.AccountSnapshot
	// Checkpoints are the poller's, by kind (job, asset, location, clock), Unix seconds;
	// PollOverlap is how far before its checkpoint each walk started.
	Checkpoints map[string]int64
	PollOverlap time.Duration
}

// Ledger is a campaign's account of every event, written as JSON. The fields of the final
// line are Faults, Acked, Applied, Lost, DupApplied, Unexpected and DeadLettered.
type Ledger struct {
	Seed            int64          `json:"seed"`
	Cycles          int            `json:"cycles"`
	Faults          int            `json:"faults"`
	FaultsByKind    map[string]int `json:"faults_by_kind"`
	UnpromptedExits []string       `json:"unprompted_exits"` // processes that died without a fault
	DurationSeconds float64        `json:"duration_seconds"`
	SettleSeconds   float64        `json:"settle_seconds"`

	Deliveries int            `json:"deliveries"` // webhook deliveries, duplicates included
	ByOutcome  map[string]int `json:"deliveries_by_outcome"`

	Attempted int `json:"attempted"` // distinct events in deliveries POSTed at least once
	Acked     int `json:"acked"`     // of those, events of a delivery answered 2xx
	NotAcked  int `json:"not_acked"` // Attempted − Acked: may legitimately be missing
	// Stored counts distinct event ids in EVENTS; StoredNotAcked those never answered 2xx
	// (persisted, then the answer was a 503 or never arrived: allowed, the sender's retry
	// is deduplicated); StoredTwice the ids stored more than once.
	Stored         int `json:"stored"`
	StoredNotAcked int `json:"stored_not_acked"`
	StoredTwice    int `json:"stored_twice"`
	// StoredPolled counts the poller's events in EVENTS (pl:… ids: restated states).
	StoredPolled int `json:"stored_polled"`
	// PollChecked counts the entities whose last update lies before a poller checkpoint
	// (less the overlap), so a walk must have read it; PollSkipped those of them whose
	// polled event EVENTS lacks: a checkpoint that skipped a change.
	PollChecked int `json:"poll_checked"`
	PollSkipped int `json:"poll_skipped"`
	// What `payroll reconcile` over the campaign's window reported: the punches the
	// ServiceTrade account implies, and how many differ from payroll's.
	ReconcileExpected      int `json:"reconcile_expected"`
	ReconcileDiscrepancies int `json:"reconcile_discrepancies"`

	// Every acked event ends in exactly one of these; their sum is Acked.
	Applied      int `json:"applied"`       // its effect is at its sink
	DeadLettered int `json:"dead_lettered"` // not applied, but in DLQ
	NoSink       int `json:"no_sink"`       // no consumer takes it (appointment, company …): stored is enough
	NoEffect     int `json:"no_effect"`     // payroll: a clock-in, whose punches come with the clock-out
	Lost         int `json:"lost"`
	// False2xx counts the lost events that were answered 2xx but are not in EVENTS: the
	// gateway acknowledged what it had not stored (counted in Lost too).
	False2xx int `json:"false_2xx"`

	AppliedBySink map[string]int `json:"applied_by_sink"`
	// AppliedOwnWrite counts applied events whose own id is on a sink write; the rest were
	// absorbed by a write of a newer version of the entity (a batch collapses events of one
	// asset; a later event's write covers an earlier one) or by its deletion.
	AppliedOwnWrite int `json:"applied_own_write"`

	DupApplied int `json:"dup_applied"`
	Unexpected int `json:"unexpected"`
	// Regressions are writes of an older version over a newer one (counted in Unexpected).
	Regressions int `json:"regressions"`
	// Absorbed counts re-deliveries the sinks answered as duplicates (idempotency by event
	// id, identical punches) or stale (asset version guard): informational.
	Absorbed map[string]int `json:"absorbed"`
	// SharedPunches counts punches (employee, time, type) that two clock events would
	// import alike — a zero-length clock event next to another: payroll keeps one.
	SharedPunches  int `json:"shared_punches"`
	DeadLetterMsgs int `json:"dead_letter_messages"`

	Imbalance []string `json:"imbalance"` // why the ledger does not balance
	Details   []string `json:"details"`   // the first lost, doubled and unexpected items
	Verdict   string   `json:"verdict"`
}

// Line is the campaign's one-line summary.
func (l *Ledger) Line() string {
	return fmt.Sprintf("chaos faults=%d acked=%d applied=%d lost=%d dup_applied=%d unexpected=%d dlq=%d poll_skipped=%d reconcile_discrepancies=%d verdict=%s",
		l.Faults, l.Acked, l.Applied, l.Lost, l.DupApplied, l.Unexpected, l.DeadLettered, l.PollSkipped, l.ReconcileDiscrepancies, l.Verdict)
}

const maxDetails = 40

func (l *Ledger) detail(format string, args ...any) {
	if len(l.Details) < maxDetails {
		l.Details = append(l.Details, fmt.Sprintf(format, args...))
	}
}

// attemptedEvent is one event the gateway makes of a delivery item.
type attemptedEvent struct {
	entity, action string
	entityID       int64
	at             int64 // the item's timestamp: the entity's "updated" after this change
	acked          bool
}

// Judge fills l from obs. Definitions, per acked event E of entity X with timestamp t (the
// simulated account sets X's "updated" to t with the change):
//
//   - work orders (jobs): applied if the work-order system received an upsert of X with
//     updated ≥ t, or — for a deletion, or once ServiceTrade no longer has X — it does not
//     hold X at the end. Assets the same against the asset registry (put_asset,
//     delete_asset); locations need a put_location with updated ≥ t.
//   - time entries (clock events): applied if payroll holds the clock-in punch (ID at
//     clockIn) and the clock-out punch (OD at clockOut) of X for its technician. A
//     "created" event without them is NoEffect: it is fetched while X may still be open.
//   - other entities have no sink: applied means stored in EVENTS (counted as NoSink).
//   - not applied: DeadLettered if DLQ holds E, else Lost. An acked event missing from
//     EVENTS is Lost whatever the sinks show.
//
// DupApplied counts effects beyond the first: the same (operation, entity, event id) applied
// again by the work-order system or the registry, the same punch (employee, time, type)
// imported again by payroll (more often than there are attempted clock events it is of).
// Unexpected counts sink writes and stored events whose event id was never attempted,
// punches of no clock event that was attempted, dead letters of no stored event, and
// regressions. The verdict is PASS when nothing is lost, doubled or
// unexpected, the ledger balances, and every sink applied something.
func Judge(l *Ledger, obs Observations) {
	l.Deliveries = len(obs.Deliveries)
	l.ByOutcome = map[string]int{}
	l.AppliedBySink = map[string]int{SinkAssets: 0, SinkWorkOrders: 0, SinkPayroll: 0}
	l.Absorbed = map[string]int{
		"workorders_duplicates": obs.WorkOrders.Duplicates,
		"assets_duplicates":     obs.Assets.Duplicates,
		"assets_stale":          obs.Assets.Stale,
		"payroll_duplicates":    obs.Payroll.Duplicates,
	}
	l.DeadLetterMsgs = obs.DeadLetterMsgs

	events := attemptedEvents(l, obs)
	l.Attempted = len(events)
	for _, e := range events {
		if e.acked {
			l.Acked++
		}
	}
	l.NotAcked = l.Attempted - l.Acked
	for id, n := range obs.Stored {
		l.Stored++
		if n > 1 {
			l.StoredTwice++
		}
		e, ok := events[id]
		switch {
		case !ok && strings.HasPrefix(id, "pl:"+obs.Tenant+":"):
			l.StoredPolled++
		case !ok:
			l.Unexpected++
			l.detail("unexpected: EVENTS holds %s, never attempted", id)
		case !e.acked:
			l.StoredNotAcked++
		}
	}
	for id, consumers := range obs.DeadLetters {
		if obs.Stored[id] == 0 {
			l.Unexpected++
			l.detail("unexpected: %v dead-lettered %s, which EVENTS does not hold", consumers, id)
		}
	}

	s := newSinkState(obs, events)
	ids := make([]string, 0, len(events))
	for id := range events {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		e := events[id]
		if !e.acked {
			continue
		}
		if obs.Stored[id] == 0 {
			l.Lost++
			l.False2xx++
			l.detail("lost: %s answered 2xx but not in EVENTS", id)
			continue
		}
		sink, applied, own := s.judge(id, e)
		switch {
		case sink == "":
			l.NoSink++
		case applied:
			l.Applied++
			l.AppliedBySink[sink]++
			if own {
				l.AppliedOwnWrite++
			}
		case len(obs.DeadLetters[id]) > 0:
			l.DeadLettered++
		case sink == SinkPayroll && e.action == "created":
			l.NoEffect++
		default:
			l.Lost++
			l.detail("lost: %s (%s %d, updated %d) not applied at %s nor dead-lettered", id, e.entity, e.entityID, e.at, sink)
		}
	}

	s.doubled(l)
	s.unexpected(l, events)
	judgePolls(l, obs)

	if sum := l.Applied + l.DeadLettered + l.NoSink + l.NoEffect + l.Lost; sum != l.Acked {
		l.Imbalance = append(l.Imbalance, fmt.Sprintf("acked %d != applied+dead_lettered+no_sink+no_effect+lost %d", l.Acked, sum))
	}
	serviceTrade := 0
	for _, d := range obs.Deliveries {
		if d.Source != simulator.SourceStandard {
			serviceTrade++
		}
	}
	if st := obs.SenderStats; st.Deliveries != uint64(serviceTrade) {
		l.Imbalance = append(l.Imbalance, fmt.Sprintf("the ServiceTrade sender made %d deliveries, %d were recorded", st.Deliveries, serviceTrade))
	}
	if l.ByOutcome[simulator.OutcomeDelivered]+l.ByOutcome[simulator.OutcomeDiscarded]+l.ByOutcome[simulator.OutcomeCanceled] != l.Deliveries {
		l.Imbalance = append(l.Imbalance, "a delivery has no known outcome")
	}
	if acked := l.Stored - l.StoredNotAcked - l.StoredPolled; acked > l.Acked {
		l.Imbalance = append(l.Imbalance, fmt.Sprintf("EVENTS holds %d acked events, only %d were acked", acked, l.Acked))
	}

	l.Verdict = "PASS"
	for sink, n := range l.AppliedBySink {
		if n == 0 {
			l.Imbalance = append(l.Imbalance, "nothing was applied at "+sink+": the campaign proved nothing there")
		}
	}
	// ReconcileDiscrepancies is reported, not judged: see the README's Fault campaign.
	if l.Lost > 0 || l.DupApplied > 0 || l.Unexpected > 0 || l.PollSkipped > 0 || len(l.Imbalance) > 0 || l.Acked == 0 {
		l.Verdict = "FAIL"
	}
}

// attemptedEvents parses every delivery that was POSTed at least once into the events the
// gateway derives from it, keyed by event id.
func attemptedEvents(l *Ledger, obs Observations) map[string]*attemptedEvent {
	events := map[string]*attemptedEvent{}
	for _, d := range obs.Deliveries {
		l.ByOutcome[d.Outcome]++
		if d.Attempts == 0 {
			continue
		}
		acked := d.Outcome == simulator.OutcomeDelivered && d.Status >= 200 && d.Status < 300
		if d.Source == simulator.SourceStandard {
			ev, err := webhook.ParseStandard(d.Body)
			id, perr := strconv.ParseInt(ev.EntityID, 10, 64)
			if err != nil || perr != nil {
				l.Imbalance = append(l.Imbalance, fmt.Sprintf("Standard Webhooks delivery %s does not parse: %v %v", d.MessageID, err, perr))
				continue
			}
			key := webhook.StandardDedupID(obs.Tenant, d.MessageID)
			e := events[key]
			if e == nil {
				e = &attemptedEvent{entity: ev.Entity, action: ev.Action, entityID: id, at: ev.Time.Unix()}
				events[key] = e
			}
			e.acked = e.acked || acked
			continue
		}
		parsed, err := webhook.ParseServiceTrade(d.Body)
		if err != nil {
			l.Imbalance = append(l.Imbalance, fmt.Sprintf("delivery %s does not parse: %v", d.MessageID, err))
			continue
		}
		for _, it := range parsed.Items {
			id := it.DedupID(obs.Tenant)
			e := events[id]
			if e == nil {
				e = &attemptedEvent{entity: it.Entity, action: it.Action, entityID: it.EntityID, at: it.Time.Unix()}
				events[id] = e
			}
			e.acked = e.acked || acked
		}
	}
	return events
}

type writeKey struct {
	op, eventID string
	id          int64
}

type punchKey struct {
	eecode, typ string
	at          int64
}

// sinkState is what the sinks hold and did, indexed for judging events.
type sinkState struct {
	obs                   Observations
	woMax, assetMax       map[int64]int64 // newest "updated" ever written per entity
	locMax                map[int64]int64
	woHeld, assetHeld     map[int64]bool // held at the end
	woWrites, assetWrites map[writeKey]int
	punches               map[punchKey]int
	punchOf               map[punchKey]map[int64]bool // punch → the attempted clock events it is of
	jobs, assets          map[int64]bool              // ServiceTrade still has them
	clocks                map[int64]servicetrade.ClockEvent
}

func newSinkState(obs Observations, events map[string]*attemptedEvent) *sinkState {
	s := &sinkState{obs: obs,
		woMax: map[int64]int64{}, assetMax: map[int64]int64{}, locMax: map[int64]int64{},
		woHeld: map[int64]bool{}, assetHeld: map[int64]bool{},
		woWrites: map[writeKey]int{}, assetWrites: map[writeKey]int{},
		punches: map[punchKey]int{}, punchOf: map[punchKey]map[int64]bool{}, jobs: map[int64]bool{}, assets: map[int64]bool{},
		clocks: map[int64]servicetrade.ClockEvent{},
	}
	for _, a := range obs.WorkOrders.Applied {
		s.woWrites[writeKey{a.Op, a.EventID, a.ID}]++
		switch a.Op {
		case workordersys.OpUpsert:
			s.woMax[a.ID] = max(s.woMax[a.ID], a.Updated)
			s.woHeld[a.ID] = true
		case workordersys.OpDelete:
			s.woHeld[a.ID] = false
		}
	}
	for _, a := range obs.Assets.Applied {
		s.assetWrites[writeKey{a.Op, a.EventID, a.ID}]++
		switch a.Op {
		case assetsys.OpPutAsset:
			s.assetMax[a.ID] = max(s.assetMax[a.ID], a.Updated)
			s.assetHeld[a.ID] = true
		case assetsys.OpDeleteAsset:
			s.assetHeld[a.ID] = false
		case assetsys.OpPutLocation:
			s.locMax[a.ID] = max(s.locMax[a.ID], a.Updated)
		}
	}
	for _, p := range obs.Payroll.Applied {
		s.punches[punchKey{p.EECode, p.PunchType, p.PunchTime}]++
	}
	for _, id := range obs.Account.Jobs {
		s.jobs[id] = true
	}
	for _, id := range obs.Account.Assets {
		s.assets[id] = true
	}
	for _, c := range obs.Account.ClockEvents {
		s.clocks[c.ID] = c
	}
	polled := []*attemptedEvent{}
	for id := range obs.Stored {
		if p, ok := parsePolled(obs.Tenant, id); ok {
			polled = append(polled, p)
		}
	}
	for _, e := range append(slices.Collect(maps.Values(events)), polled...) {
		if c, ok := s.clocks[e.entityID]; ok && e.entity == event.EntityTimeEntry {
			code := obs.Account.EECodes[c.UserID]
			for _, k := range []punchKey{{code, paycom.PunchIn, c.ClockIn}, {code, paycom.PunchOut, c.ClockOut}} {
				if s.punchOf[k] == nil {
					s.punchOf[k] = map[int64]bool{}
				}
				s.punchOf[k][c.ID] = true
			}
		}
	}
	return s
}

// judge returns the sink of event e, whether its effect is there, and whether by a write
// carrying its own id.
func (s *sinkState) judge(id string, e *attemptedEvent) (sink string, applied, own bool) {
	x := e.entityID
	switch e.entity {
	case event.EntityWorkOrder:
		if e.action == servicetrade.ActionDeleted {
			return SinkWorkOrders, !s.woHeld[x], s.woWrites[writeKey{workordersys.OpDelete, id, x}] > 0
		}
		own = s.woWrites[writeKey{workordersys.OpUpsert, id, x}] > 0
		return SinkWorkOrders, s.woMax[x] >= e.at || (!s.jobs[x] && !s.woHeld[x]), own
	case event.EntityAsset:
		if e.action == servicetrade.ActionDeleted {
			return SinkAssets, !s.assetHeld[x], s.assetWrites[writeKey{assetsys.OpDeleteAsset, id, x}] > 0
		}
		own = s.assetWrites[writeKey{assetsys.OpPutAsset, id, x}] > 0
		return SinkAssets, s.assetMax[x] >= e.at || (!s.assets[x] && !s.assetHeld[x]), own
	case event.EntityLocation:
		return SinkAssets, s.locMax[x] >= e.at, s.assetWrites[writeKey{assetsys.OpPutLocation, id, x}] > 0
	case event.EntityTimeEntry:
		c, ok := s.clocks[x]
		if !ok || c.ClockOut == 0 {
			return SinkPayroll, false, false
		}
		code := s.obs.Account.EECodes[c.UserID]
		in := s.punches[punchKey{code, paycom.PunchIn, c.ClockIn}] > 0
		out := s.punches[punchKey{code, paycom.PunchOut, c.ClockOut}] > 0
		return SinkPayroll, in && out, false
	}
	return "", false, false
}

// writes are the writes the work-order system and the registry applied, by sink.
func (s *sinkState) writes() map[string]map[writeKey]int {
	return map[string]map[writeKey]int{SinkWorkOrders: s.woWrites, SinkAssets: s.assetWrites}
}

// doubled counts effects applied more than once.
func (s *sinkState) doubled(l *Ledger) {
	for sink, writes := range s.writes() {
		for k, n := range writes {
			if n > 1 {
				l.DupApplied += n - 1
				l.detail("dup_applied: %s applied %s of %d for %s %d times", sink, k.op, k.id, k.eventID, n)
			}
		}
	}
	for k, n := range s.punches {
		if of := max(1, len(s.punchOf[k])); n > of {
			l.DupApplied += n - of
			l.detail("dup_applied: payroll imported punch %s %s at %d %d times, for %d clock events", k.eecode, k.typ, k.at, n, of)
		}
	}
}

// unexpected counts effects no attempted event explains, and regressions.
func (s *sinkState) unexpected(l *Ledger, events map[string]*attemptedEvent) {
	for sink, writes := range s.writes() {
		for k, n := range writes {
			if events[k.eventID] == nil && !(strings.HasPrefix(k.eventID, "pl:") && s.obs.Stored[k.eventID] > 0) {
				l.Unexpected += n
				l.detail("unexpected: %s applied %s of %d for %s, never attempted", sink, k.op, k.id, k.eventID)
			}
		}
	}
	for _, clocks := range s.punchOf {
		if len(clocks) > 1 {
			l.SharedPunches++
		}
	}
	for k, n := range s.punches {
		if s.punchOf[k] == nil {
			l.Unexpected += n
			l.detail("unexpected: payroll imported punch %s %s at %s, of no attempted clock event", k.eecode, k.typ, strconv.FormatInt(k.at, 10))
		}
	}
	for _, v := range append(slices.Clone(s.obs.WorkOrders.Violations), s.obs.Assets.Violations...) {
		l.Regressions++
		l.Unexpected++
		l.detail("regression: %s", v)
	}
}

// parsePolled reads a polled event's id, pl:<tenant>:<entity>:<id>:<updated>.
func parsePolled(tenant, id string) (*attemptedEvent, bool) {
	parts := strings.Split(id, ":")
	if len(parts) != 5 || parts[0] != "pl" || parts[1] != tenant {
		return nil, false
	}
	n, err1 := strconv.ParseInt(parts[3], 10, 64)
	at, err2 := strconv.ParseInt(parts[4], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	return &attemptedEvent{entity: parts[2], entityID: n, at: at}, true
}

// judgePolls checks that no poller checkpoint skipped a change: every entity whose last
// update lies at or before its kind's checkpoint less the overlap was read by a completed
// walk, so EVENTS must hold the polled event of exactly that version (the account changed
// nothing after the load stopped).
func judgePolls(l *Ledger, obs Observations) {
	for kind, cp := range obs.Checkpoints {
		horizon := cp - int64(obs.PollOverlap/time.Second)
		entity := event.NormalizeEntity(kind)
		for id, updated := range obs.Account.Updated[kind] {
			if updated > horizon {
				continue
			}
			l.PollChecked++
			if obs.Stored[poller.DedupID(obs.Tenant, entity, id, updated)] == 0 {
				l.PollSkipped++
				l.detail("poll_skipped: %s %d updated %d, before the %s checkpoint %d, was never polled", entity, id, updated, kind, cp)
			}
		}
	}
	if len(obs.Checkpoints) == 0 {
		l.Imbalance = append(l.Imbalance, "the poller kept no checkpoint: the campaign proved nothing about it")
	}
}
