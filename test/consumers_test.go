package test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/consumerd"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/assets"
	"github.com/fieldstream/fieldstream/services/assets/assetsys"
	"github.com/fieldstream/fieldstream/services/gateway"
	"github.com/fieldstream/fieldstream/services/payroll"
	"github.com/fieldstream/fieldstream/services/payroll/paycom"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/fault"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/services/workorders"
	"github.com/fieldstream/fieldstream/services/workorders/wosystem"
)

// pipelineEnv is the whole pipeline on one embedded JetStream: the gateway, the simulated
// outside world, and the three consumer services, each as its own durable consumer.
type pipelineEnv struct {
	t      *testing.T
	js     jetstream.JetStream
	stack  *simulator.Stack
	urls   map[string]string
	hook   string
	sender *stsim.Sender
	emps   *payroll.KVEmployees
	st     servicetrade.Config

	mu        sync.Mutex
	delivered map[string]bool // subjects of the events the gateway stored
}

func newPipelineEnv(t *testing.T, sc simulator.StackConfig) *pipelineEnv {
	t.Helper()
	ctx := context.Background()
	e := &pipelineEnv{t: t, urls: map[string]string{}, delivered: map[string]bool{}}
	_, e.js = natstest.Connect(t, natstest.RunServer(t))
	if err := gateway.ApplyStreams(ctx, e.js, gateway.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	kv, err := tenant.OpenBucket(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenant.Put(ctx, kv, "acme", tenant.Config{ServiceTradeToken: "tok", RatePerSecond: 1e6, Burst: 1e6}); err != nil {
		t.Fatal(err)
	}
	dir, err := tenant.Watch(ctx, kv, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Stop() })
	gw, err := gateway.New(gateway.Config{JetStream: e.js, Tenants: dir})
	if err != nil {
		t.Fatal(err)
	}
	gws := httptest.NewServer(gw)
	t.Cleanup(gws.Close)
	e.hook = gws.URL + "/hooks/acme/servicetrade/tok"

	if e.stack, err = simulator.NewStack(sc); err != nil {
		t.Fatal(err)
	}
	for name, h := range e.stack.Handlers() {
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		e.urls[name] = s.URL
	}
	if e.emps, err = payroll.OpenEmployees(ctx, e.js); err != nil {
		t.Fatal(err)
	}
	for user, code := range e.stack.EECodes {
		if err := e.emps.Put(ctx, user, code); err != nil {
			t.Fatal(err)
		}
	}
	e.st = servicetrade.Config{BaseURL: e.urls["servicetrade"] + "/api", ClientID: e.stack.Config.ClientID, ClientSecret: e.stack.Config.ClientSecret}
	if e.sender, err = stsim.NewSender(stsim.SenderConfig{URL: e.hook, RetryDelay: time.Millisecond, Attempts: 10, DuplicateRate: stsim.Never, ReorderRate: stsim.Never}, e.stack.Account); err != nil {
		t.Fatal(err)
	}
	return e
}

// start runs the three consumer services until the test ends.
func (e *pipelineEnv) start(cfg consumer.Config) {
	e.t.Helper()
	pc := paycom.Config{BaseURL: e.urls["paycom"], SID: e.stack.Config.PaycomSID, Token: e.stack.Config.PaycomToken}
	services := []consumerd.Service{
		assets.Service(assetsys.Config{BaseURL: e.urls["assets"]}),
		workorders.Service(wosystem.Config{BaseURL: e.urls["workorders"]}),
		payroll.Service(pc, "UTC"),
	}
	if cfg.NakDelay == 0 {
		cfg.NakDelay, cfg.NakDelayMax = 20*time.Millisecond, 200*time.Millisecond
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = 50
	}
	opts := consumer.PipelineOptions{Retry: consumer.RetryConfig{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, Budget: 200 * time.Millisecond}}
	for _, s := range services {
		p, err := consumerd.Pipeline(context.Background(), e.js, s, cfg, e.st, opts, zerolog.Nop())
		if err != nil {
			e.t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = p.Run(ctx) }()
		e.t.Cleanup(func() { cancel(); <-done })
	}
}

// send makes n batches of account changes and delivers them through the gateway.
func (e *pipelineEnv) send(n int) {
	e.t.Helper()
	for range n {
		d := stsim.NewDelivery(e.stack.Account.NextChanges(4, time.Now()), time.Now())
		if r := e.sender.Deliver(context.Background(), d); !r.Delivered {
			e.t.Fatalf("delivery not delivered: %+v", r)
		}
	}
}

// settled reports whether every consumer has nothing pending.
func (e *pipelineEnv) settled() bool {
	for _, name := range []string{assets.Name, workorders.Name, payroll.Name} {
		c, err := e.js.Consumer(context.Background(), "EVENTS", name)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		if err != nil || info.NumPending != 0 || info.NumAckPending != 0 || info.NumRedelivered != 0 && info.NumAckPending != 0 {
			return false
		}
	}
	return true
}

func (e *pipelineEnv) deadLetters() []*jetstream.RawStreamMsg {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), "DLQ")
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		if m, err := s.GetMsg(context.Background(), seq); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// eventIDs lists the ids of the stored events about entity.
func (e *pipelineEnv) entityIDs(entity string) map[int64]bool {
	e.t.Helper()
	s, _ := e.js.Stream(context.Background(), "EVENTS")
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

// checkConverged asserts that every downstream system now matches ServiceTrade.
func (e *pipelineEnv) checkConverged() {
	e.t.Helper()
	acct := e.stack.Account
	for id := range e.entityIDs(event.EntityAsset) {
		want, ok := acct.Asset(id)
		got, found := e.stack.Registry.Asset(id)
		if ok && (!found || got.Status != want.Status || got.Updated != want.Updated || got.LocationID != want.LocationID) {
			e.t.Errorf("asset %d: registry %+v (found %v), ServiceTrade %+v", id, got, found, want)
		}
	}
	for id := range e.entityIDs(event.EntityWorkOrder) {
		want, ok := acct.Job(id)
		got, found := e.stack.WorkOrders.WorkOrder(id)
		if ok && (!found || got.Status != want.Status || got.Updated != want.Updated) {
			e.t.Errorf("work order %d: system %+v (found %v), ServiceTrade %+v", id, got, found, want)
		}
	}
	for name, v := range map[string][]string{"assets": e.stack.Registry.Violations(), "workorders": e.stack.WorkOrders.Violations(), "paycom": e.stack.Payroll.Violations()} {
		if len(v) > 0 {
			e.t.Errorf("%s: an older change overwrote a newer one: %v", name, v)
		}
	}
}

func (e *pipelineEnv) reconcile() payroll.Report {
	e.t.Helper()
	src, err := servicetrade.New(e.st)
	if err != nil {
		e.t.Fatal(err)
	}
	pay, err := paycom.New(paycom.Config{BaseURL: e.urls["paycom"], SID: e.stack.Config.PaycomSID, Token: e.stack.Config.PaycomToken})
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := payroll.Reconcile(context.Background(), src, pay, e.emps, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func setFaults(t *testing.T, in *fault.Injector, f fault.Faults) {
	t.Helper()
	in.Set(f)
}

// TestConsumersConvergeUnderFaults sends realistic ServiceTrade traffic through the
// gateway while every outside system misbehaves — the ServiceTrade API fails a fifth of
// its requests, the asset registry is down, the work-order system rate-limits, payroll
// fails its next calls — then heals them, and checks that every downstream system ends
// equal to ServiceTrade, with nothing dead-lettered and nothing applied out of order.
func TestConsumersConvergeUnderFaults(t *testing.T) {
	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 11, IDBase: 1<<53 + 1}})
	setFaults(t, e.stack.API.Faults(), fault.Faults{ErrorRate: 0.2, ErrorStatus: 503})
	setFaults(t, e.stack.Registry.Faults(), fault.Faults{Outage: true})
	setFaults(t, e.stack.WorkOrders.Faults(), fault.Faults{RatePerSecond: 20})
	setFaults(t, e.stack.Payroll.Faults(), fault.Faults{FailNext: 5, ErrorStatus: 502})
	e.start(consumer.Config{})
	e.send(60)
	natstest.Eventually(t, 20*time.Second, "registry outage felt", func() bool { return e.stack.Registry.Faults().Stats().OutageHits > 0 })
	for _, in := range []*fault.Injector{e.stack.API.Faults(), e.stack.Registry.Faults(), e.stack.WorkOrders.Faults(), e.stack.Payroll.Faults()} {
		in.Set(fault.Faults{})
	}
	natstest.Eventually(t, 60*time.Second, "every consumer settled", e.settled)
	if dl := e.deadLetters(); len(dl) != 0 {
		t.Fatalf("%d dead letters, first %s: %s", len(dl), dl[0].Subject, dl[0].Header.Get(consumer.HeaderDLQError))
	}
	e.checkConverged()
	if r := e.reconcile(); len(r.Discrepancies) != 0 || r.Expected == 0 {
		t.Fatalf("payroll reconciliation: %d expected, %d found, discrepancies %+v", r.Expected, r.Found, r.Discrepancies)
	}
	if e.stack.API.Faults().Stats().Injected == 0 || e.stack.WorkOrders.Faults().Stats().RateLimited+e.stack.WorkOrders.Faults().Stats().Injected == 0 && e.stack.WorkOrders.Calls() > 100 {
		t.Fatalf("faults were not exercised: %+v", e.stack.API.Faults().Stats())
	}
	t.Logf("asset registry: %d grouped calls for %d items; work orders: %d calls; payroll: %d imports, %d punches",
		e.stack.Registry.Calls(), e.stack.Registry.Items(), e.stack.WorkOrders.Calls(), e.stack.Payroll.Calls(), e.stack.Payroll.Items())
}

// TestPayrollSplitIsolatesBadPunches: payroll rejects any batch holding a punch of an
// employee it does not know; exactly those clock events are dead-lettered and every other
// one is imported.
func TestPayrollSplitIsolatesBadPunches(t *testing.T) {
	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 5}, UnknownToPayroll: []int{0}})
	var badUser int64
	for user, code := range e.stack.EECodes {
		if code == "E001" {
			badUser = user
		}
	}
	// Let events pile up so payroll gets big batches, then start the consumers.
	e.send(80)
	e.start(consumer.Config{BatchSize: 100, BatchLinger: 50 * time.Millisecond})
	natstest.Eventually(t, 60*time.Second, "every consumer settled", e.settled)

	wantDead := map[int64]bool{} // closed clock events of the unknown employee
	for _, ce := range e.stack.Account.ClockEvents() {
		if ce.UserID == badUser && ce.ClockOut != 0 {
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
	if e.stack.Payroll.Rejected() == 0 {
		t.Fatal("payroll never rejected a batch: the split was not exercised")
	}
	t.Logf("%d bad clock events isolated; payroll rejected %d batches, imported %d punches", len(gotDead), e.stack.Payroll.Rejected(), e.stack.Payroll.Items())
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
	if r := e.sender.Deliver(context.Background(), unknown); !r.Delivered {
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
	before := e.stack.WorkOrders.Calls()
	applied := len(e.stack.WorkOrders.Applied())
	if err := e.js.DeleteConsumer(context.Background(), "EVENTS", workorders.Name); err != nil {
		t.Fatal(err)
	}
	p, err := consumerd.Pipeline(context.Background(), e.js, workorders.Service(wosystem.Config{BaseURL: e.urls["workorders"]}),
		consumer.Config{NakDelay: 20 * time.Millisecond}, e.st, consumer.PipelineOptions{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	natstest.Eventually(t, 30*time.Second, "replay settled", e.settled)
	if got := e.stack.WorkOrders.Calls(); got != before || len(e.stack.WorkOrders.Applied()) != applied {
		t.Fatalf("replay reached the work-order system: %d calls before, %d after", before, got)
	}
	if n := len(e.deadLetters()); n != 1 {
		t.Fatalf("replay dead-lettered again: %d dead letters", n)
	}
}
