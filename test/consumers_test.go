package test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/services/payroll"
	"github.com/fieldstream/fieldstream/services/payroll/paycom"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/fault"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/services/workorders"
	"github.com/fieldstream/fieldstream/test/harness"
)

// pipelineEnv is the whole pipeline on one embedded JetStream (see package harness), with
// the checks the tests share.
type pipelineEnv struct {
	*harness.Env
	t *testing.T
}

func newPipelineEnv(t *testing.T, sc simulator.StackConfig) *pipelineEnv {
	t.Helper()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	return newPipelineEnvOn(t, js, sc)
}

func newPipelineEnvOn(t *testing.T, js jetstream.JetStream, sc simulator.StackConfig) *pipelineEnv {
	t.Helper()
	env, err := harness.New(context.Background(), js, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return &pipelineEnv{Env: env, t: t}
}

// start runs the three consumer services, with short delays, until the test ends.
func (e *pipelineEnv) start(cfg consumer.Config) {
	e.t.Helper()
	if cfg.NakDelay == 0 {
		cfg.NakDelay, cfg.NakDelayMax = 20*time.Millisecond, 200*time.Millisecond
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = 50
	}
	opts := consumer.PipelineOptions{Retry: consumer.RetryConfig{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, Budget: 200 * time.Millisecond}}
	for _, name := range harness.Consumers {
		if err := e.StartConsumer(context.Background(), name, cfg, opts, nil); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *pipelineEnv) send(n int) {
	e.t.Helper()
	if err := e.Send(context.Background(), n, 4); err != nil {
		e.t.Fatal(err)
	}
}

func (e *pipelineEnv) settled() bool { return e.Settled(context.Background(), harness.Consumers...) }

func (e *pipelineEnv) deadLetters() []*jetstream.RawStreamMsg {
	e.t.Helper()
	dl, err := e.DeadLetters(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return dl
}

// eventIDs lists the ids of the stored events about entity.
func (e *pipelineEnv) entityIDs(entity string) map[int64]bool {
	e.t.Helper()
	s, _ := e.JS.Stream(context.Background(), "EVENTS")
	cons, err := s.OrderedConsumer(context.Background(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{"events.*." + entity + ".>"}})
	if err != nil {
		e.t.Fatal(err)
	}
	ids := map[int64]bool{}
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return ids
		}
		_, _, id, _, _ := event.SubjectParts(m.Subject())
		n, _ := strconv.ParseInt(id, 10, 64)
		ids[n] = true
	}
}

// checkConverged asserts that the downstream systems now match ServiceTrade: the asset
// registry and the work-order system, or only the assets when onlyAssets is set.
func (e *pipelineEnv) checkConverged(onlyAssets ...bool) {
	e.t.Helper()
	acct := e.Stack.Account
	for id := range e.entityIDs(event.EntityAsset) {
		want, ok := acct.Asset(id)
		got, found := e.Stack.Registry.Asset(id)
		if ok && (!found || got.Status != want.Status || got.Updated != want.Updated || got.LocationID != want.LocationID) {
			e.t.Errorf("asset %d: registry %+v (found %v), ServiceTrade %+v", id, got, found, want)
		}
	}
	for id := range e.entityIDs(event.EntityWorkOrder) {
		if len(onlyAssets) > 0 && onlyAssets[0] {
			break
		}
		want, ok := acct.Job(id)
		got, found := e.Stack.WorkOrders.WorkOrder(id)
		if ok && (!found || got.Status != want.Status || got.Updated != want.Updated) {
			e.t.Errorf("work order %d: system %+v (found %v), ServiceTrade %+v", id, got, found, want)
		}
	}
	for name, v := range map[string][]string{"assets": e.Stack.Registry.Violations(), "workorders": e.Stack.WorkOrders.Violations()} {
		if len(v) > 0 {
			e.t.Errorf("%s: an older change overwrote a newer one: %v", name, v)
		}
	}
}

// explainClockEvent logs what the account, EVENTS and payroll know of a clock event.
func (e *pipelineEnv) explainClockEvent(id int64) {
	ctx := context.Background()
	ce, _ := e.Stack.Account.ClockEvent(id)
	e.t.Logf("clock event %d in ServiceTrade: %+v", id, ce)
	s, _ := e.JS.Stream(ctx, "EVENTS")
	_ = ops.ReadOrdered(ctx, s, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"events.*.time_entry." + strconv.FormatInt(id, 10) + ".>"}},
		func(m jetstream.Msg, meta *jetstream.MsgMetadata) (bool, error) {
			e.t.Logf("  EVENTS seq %d %s: %s", meta.Sequence.Stream, m.Subject(), m.Data())
			return true, nil
		})
	code := e.Stack.EECodes[ce.UserID]
	for _, p := range e.Stack.Payroll.Applied() {
		if p.EECode == code {
			e.t.Logf("  payroll holds %s %s at %d (punch %d)", p.EECode, p.PunchType, p.PunchTime, p.PunchID)
		}
	}
}

func (e *pipelineEnv) reconcile() payroll.Report {
	e.t.Helper()
	src, err := servicetrade.New(e.ServiceTrade)
	if err != nil {
		e.t.Fatal(err)
	}
	pay, err := paycom.New(paycom.Config{BaseURL: e.URLs.Paycom, SID: e.Stack.Config.PaycomSID, Token: e.Stack.Config.PaycomToken})
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := payroll.Reconcile(context.Background(), src, pay, e.Employees, e.HistoryEnd(), time.Now().Add(time.Hour))
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// TestConsumersConvergeUnderFaults sends realistic ServiceTrade traffic through the
// gateway while every outside system misbehaves — the ServiceTrade API fails a fifth of
// its requests, the asset registry is down, the work-order system rate-limits, payroll
// fails its next calls — then heals them, and checks that every downstream system ends
// equal to ServiceTrade, with nothing dead-lettered and nothing applied out of order.
func TestConsumersConvergeUnderFaults(t *testing.T) {
	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 11, IDBase: 1<<53 + 1}})
	e.Stack.API.Faults().Set(fault.Faults{ErrorRate: 0.2, ErrorStatus: 503})
	e.Stack.Registry.Faults().Set(fault.Faults{Outage: true})
	e.Stack.WorkOrders.Faults().Set(fault.Faults{RatePerSecond: 20})
	e.Stack.Payroll.Faults().Set(fault.Faults{FailNext: 5, ErrorStatus: 502})
	e.start(consumer.Config{})
	e.send(60)
	natstest.Eventually(t, 20*time.Second, "registry outage felt", func() bool { return e.Stack.Registry.Faults().Stats().OutageHits > 0 })
	for _, in := range []*fault.Injector{e.Stack.API.Faults(), e.Stack.Registry.Faults(), e.Stack.WorkOrders.Faults(), e.Stack.Payroll.Faults()} {
		in.Set(fault.Faults{})
	}
	natstest.Eventually(t, 60*time.Second, "every consumer settled", e.settled)
	if dl := e.deadLetters(); len(dl) != 0 {
		t.Fatalf("%d dead letters, first %s: %s", len(dl), dl[0].Subject, dl[0].Header.Get(consumer.HeaderDLQError))
	}
	e.checkConverged()
	if r := e.reconcile(); len(r.Discrepancies) != 0 || r.Expected == 0 {
		for _, d := range r.Discrepancies {
			e.explainClockEvent(d.ClockEventID)
		}
		t.Fatalf("payroll reconciliation: %d expected, %d found, discrepancies %+v", r.Expected, r.Found, r.Discrepancies)
	}
	if e.Stack.API.Faults().Stats().Injected == 0 || e.Stack.WorkOrders.Faults().Stats().RateLimited+e.Stack.WorkOrders.Faults().Stats().Injected == 0 && e.Stack.WorkOrders.Calls() > 100 {
		t.Fatalf("faults were not exercised: %+v", e.Stack.API.Faults().Stats())
	}
	t.Logf("asset registry: %d grouped calls for %d items; work orders: %d calls; payroll: %d imports, %d punches",
		e.Stack.Registry.Calls(), e.Stack.Registry.Items(), e.Stack.WorkOrders.Calls(), e.Stack.Payroll.Calls(), e.Stack.Payroll.Items())
}

// TestPayrollSplitIsolatesBadPunches: payroll rejects any batch holding a punch of an
// employee it does not know; exactly those clock events are dead-lettered and every other
// one is imported.
func TestPayrollSplitIsolatesBadPunches(t *testing.T) {
	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 6}, UnknownToPayroll: []int{0}})
	var badUser int64
	for user, code := range e.Stack.EECodes {
		if code == "E001" {
			badUser = user
		}
	}
	// Let events pile up so payroll gets big batches, then start the consumers.
	e.send(80)
	e.start(consumer.Config{BatchSize: 100, BatchLinger: 50 * time.Millisecond})
	natstest.Eventually(t, 60*time.Second, "every consumer settled", e.settled)

	wantDead := map[int64]bool{} // closed clock events of the unknown employee with events
	announced := e.entityIDs(event.EntityTimeEntry)
	for _, ce := range e.Stack.Account.ClockEvents() {
		if ce.UserID == badUser && ce.ClockOut != 0 && announced[ce.ID] {
			wantDead[ce.ID] = true
		}
	}
	if len(wantDead) == 0 {
		t.Fatal("the unknown employee closed no clock event; pick another seed")
	}
	gotDead := map[int64]bool{}
	for _, d := range e.deadLetters() {
		_, entity, id, _, _ := event.SubjectParts(strings.TrimPrefix(d.Header.Get(consumer.HeaderDLQSubject), ""))
		n, _ := strconv.ParseInt(id, 10, 64)
		if entity != event.EntityTimeEntry || d.Header.Get(consumer.HeaderDLQConsumer) != payroll.Name || d.Header.Get(consumer.HeaderDLQClass) != consumer.ClassPermanent {
			t.Fatalf("unexpected dead letter %s %v", d.Subject, d.Header)
		}
		var ce event.CloudEvent
		if err := json.Unmarshal(d.Data, &ce); err != nil || ce.EntityID != id {
			t.Fatalf("dead letter payload is not the original event: %v", err)
		}
		gotDead[n] = true
	}
	// A clock event is dead-lettered once per event that closed it (at most one).
	for id := range wantDead {
		if !gotDead[id] {
			t.Errorf("clock event %d of the unknown employee was not dead-lettered", id)
		}
	}
	for id := range gotDead {
		if !wantDead[id] {
			t.Errorf("clock event %d was dead-lettered but its employee is known", id)
		}
	}
	r := e.reconcile()
	for _, d := range r.Discrepancies {
		if d.EECode != "E001" {
			t.Errorf("discrepancy for a good employee: %+v", d)
		}
	}
	if e.Stack.Payroll.Rejected() == 0 {
		t.Fatal("payroll never rejected a batch: the split was not exercised")
	}
	t.Logf("%d bad clock events isolated; payroll rejected %d batches, imported %d punches", len(gotDead), e.Stack.Payroll.Rejected(), e.Stack.Payroll.Items())
}

// TestReplayAndUnknownEntities: an event for a job ServiceTrade never had is dead-lettered
// at once with its provenance; replaying the whole stream to the work-order consumer
// afterwards (its durable recreated from the first event) applies nothing twice.
func TestReplayAndUnknownEntities(t *testing.T) {
	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 3}})
	e.start(consumer.Config{})
	e.send(20)
	// A delivery about a job the account never created.
	unknown := stsim.NewDelivery([]stsim.Change{{Action: "updated", Timestamp: time.Now().Unix(), UserID: 1, Entity: stsim.Ref("job", 42)}}, time.Now())
	if r := e.Sender.Deliver(context.Background(), unknown); !r.Delivered {
		t.Fatalf("unknown-job delivery: %+v", r)
	}
	natstest.Eventually(t, 30*time.Second, "settled", e.settled)
	dl := e.deadLetters()
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want the unknown job only", len(dl))
	}
	h := dl[0].Header
	if dl[0].Subject != "dlq.workorders.acme.work_order.42.updated" || h.Get(consumer.HeaderDLQClass) != consumer.ClassPermanent ||
		h.Get(consumer.HeaderDLQAttempts) != "1" || !strings.Contains(h.Get(consumer.HeaderDLQError), "HTTP 404") ||
		h.Get(consumer.HeaderDLQSubject) != "events.acme.work_order.42.updated" || h.Get(consumer.HeaderDLQStream) != "EVENTS" || h.Get(consumer.HeaderDLQSequence) == "" {
		t.Fatalf("dead letter %s lacks provenance: %v", dl[0].Subject, h)
	}
	e.checkConverged()

	// Replay: the durable is recreated and sees every event again.
	before := e.Stack.WorkOrders.Calls()
	applied := len(e.Stack.WorkOrders.Applied())
	if err := e.JS.DeleteConsumer(context.Background(), "EVENTS", workorders.Name); err != nil {
		t.Fatal(err)
	}
	if err := e.StartConsumer(context.Background(), workorders.Name, consumer.Config{NakDelay: 20 * time.Millisecond}, consumer.PipelineOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, "replay settled", e.settled)
	if got := e.Stack.WorkOrders.Calls(); got != before || len(e.Stack.WorkOrders.Applied()) != applied {
		t.Fatalf("replay reached the work-order system: %d calls before, %d after", before, got)
	}
	if n := len(e.deadLetters()); n != 1 {
		t.Fatalf("replay dead-lettered again: %d dead letters", n)
	}
}

// TestAssetsGroupWritesUnderBurst: a burst of asset events reaches the registry as one
// grouped write per service location and batch, at least ten times fewer calls than events,
// and the registry ends equal to ServiceTrade.
func TestAssetsGroupWritesUnderBurst(t *testing.T) {
	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 21}})
	if err := e.Send(context.Background(), 400, 5); err != nil {
		t.Fatal(err)
	}
	events := len(e.entityIDs(event.EntityAsset))
	if err := e.StartConsumer(context.Background(), "assets", consumer.Config{BatchSize: 500, BatchLinger: 100 * time.Millisecond, MaxAckPending: 2000}, consumer.PipelineOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, "assets settled", func() bool { return e.Settled(context.Background(), "assets") })
	s, _ := e.JS.Stream(context.Background(), "EVENTS")
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter("events.*.asset.>"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	calls := e.Stack.Registry.Calls()
	if n == 0 || calls == 0 || calls*10 > n {
		t.Fatalf("%d asset events (%d assets) took %d grouped calls; want at least 10x fewer", n, events, calls)
	}
	e.checkConverged(true)
	t.Logf("%d asset events, %d grouped registry calls (%.1fx fewer)", n, calls, float64(n)/float64(calls))
}
