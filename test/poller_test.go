package test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/poller"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/assetsys"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/services/simulator/workordersys"
	"github.com/fieldstream/fieldstream/test/harness"
)

// TestPollerRecoversDiscardedWebhooks: webhooks flow, then the gateway is unreachable long
// enough for ServiceTrade to discard some deliveries, then webhooks flow again. One poll
// brings every downstream system back to ServiceTrade's state and payroll reconciles, while
// nothing whose webhook had arrived is applied a second time.
//
// Each delivery carries the changes of its own second (the account's clock is the test's),
// and the consumers settle between the phases. ServiceTrade's timestamps are whole seconds:
// a polled event applies only when strictly newer than what a consumer applied, so a change
// lost in the same second as a delivered change of the same entity would stay lost unless
// the delivered one was applied after the lost one had happened (the consumers fetch the
// current state). That is a limit of second-resolution timestamps, not of the poller.
func TestPollerRecoversDiscardedWebhooks(t *testing.T) {
	ctx := context.Background()
	start := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 13, IDBase: 1<<53 + 1, Start: start}})
	applied := e.startRecording()

	// ServiceTrade's view of the gateway during the outage: every attempt fails.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "gateway unavailable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	lossy, err := stsim.NewSender(stsim.SenderConfig{URL: down.URL + "/hooks/" + harness.Tenant + "/servicetrade/tok",
		RetryDelay: time.Millisecond, DuplicateRate: stsim.Never, ReorderRate: stsim.Never}, e.Stack.Account)
	if err != nil {
		t.Fatal(err)
	}
	at := start
	var discarded []stsim.Change
	// deliver makes n deliveries of 4 changes, each in the next second, then one of the
	// changes the account made but had not reported, through s.
	deliver := func(s *stsim.Sender, n int) {
		t.Helper()
		for i := range n + 1 {
			at = at.Add(time.Second)
			var changes []stsim.Change
			if i < n {
				changes = e.Stack.Account.NextChanges(4, at)
			} else {
				changes = e.Stack.Account.PendingChanges()
			}
			if len(changes) == 0 {
				continue
			}
			r := s.Deliver(ctx, stsim.NewDelivery(changes, at))
			switch {
			case s == lossy && !errors.Is(r.Err, stsim.ErrDiscarded):
				t.Fatalf("delivery during the outage: %+v, want it discarded", r)
			case s == lossy:
				discarded = append(discarded, r.Delivery.Items...)
			case !r.Delivered:
				t.Fatalf("delivery not delivered: %v", r.Err)
			}
		}
	}

	deliver(e.Sender, 15)
	natstest.Eventually(t, 30*time.Second, "webhooks before the outage applied", e.settled)
	deliver(lossy, 15)
	deliver(e.Sender, 10)
	natstest.Eventually(t, 30*time.Second, "webhooks after the outage applied", e.settled)
	if st := lossy.Stats(); st.Discarded == 0 || st.EventsDiscarded != uint64(len(discarded)) {
		t.Fatalf("sender stats %+v: nothing discarded", st)
	}
	lost := e.lostJobsAndAssets()
	if len(lost) == 0 {
		t.Fatal("the discarded deliveries left no job or asset behind: pick another seed")
	}
	before := e.reconcile()

	src, err := servicetrade.New(e.ServiceTrade)
	if err != nil {
		t.Fatal(err)
	}
	p, err := poller.New(ctx, poller.Config{JetStream: e.JS, Tenant: harness.Tenant, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.PollOnce(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 60*time.Second, "polled events applied", e.settled)
	if dl := e.deadLetters(); len(dl) != 0 {
		t.Fatalf("%d dead letters, first %s: %s", len(dl), dl[0].Subject, dl[0].Header.Get(consumer.HeaderDLQError))
	}
	e.checkConverged()
	if still := e.lostJobsAndAssets(); len(still) != 0 {
		t.Errorf("jobs and assets still behind ServiceTrade after the poll: %v", still)
	}
	if r := e.reconcile(); len(r.Discrepancies) != 0 || r.Expected == 0 {
		t.Fatalf("payroll reconciliation after the poll: %d expected, %d found, discrepancies %+v", r.Expected, r.Found, r.Discrepancies)
	}

	// Nothing applied twice: no consumer applied a polled event (pl:…) to an entity version
	// (id and update time) whose webhook event it had applied, and no sink got a write from
	// a polled event of a version a webhook's event had written.
	polledApplied := applied.checkNoPolledReapply(t)
	polledWrites := e.checkNoPolledRewrites()
	if polledApplied == 0 || polledWrites == 0 {
		t.Fatalf("the poll applied nothing: %d polled events applied, %d sink writes", polledApplied, polledWrites)
	}
	tot := res.Total()
	t.Logf("%d webhook items discarded (%d jobs and assets left behind, %d punch discrepancies before the poll); "+
		"the poll read %d entities, published %d (%d duplicates); consumers applied %d of them (%d asset registry and work-order writes)",
		len(discarded), len(lost), len(before.Discrepancies), tot.Seen, tot.Published, tot.Duplicates, polledApplied, polledWrites)
}

// appliedEvents records, per consumer, the events its handler applied: those its
// pipeline (the ledger among it) let through and the handler did not fail.
type appliedEvents struct {
	mu sync.Mutex
	by map[string][]event.CloudEvent // consumer → events
}

// startRecording runs the three consumer services, as start does, each recording what
// it applies.
func (e *pipelineEnv) startRecording() *appliedEvents {
	e.t.Helper()
	rec := &appliedEvents{by: map[string][]event.CloudEvent{}}
	cfg := consumer.Config{NakDelay: 20 * time.Millisecond, NakDelayMax: 200 * time.Millisecond, MaxDeliver: 50}
	opts := consumer.PipelineOptions{Retry: consumer.RetryConfig{InitialInterval: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, Budget: 200 * time.Millisecond}}
	for _, name := range harness.Consumers {
		record := func(next consumer.BatchHandler) consumer.BatchHandler {
			return func(ctx context.Context, batch []*consumer.Message) []error {
				errs := next(ctx, batch)
				rec.mu.Lock()
				defer rec.mu.Unlock()
				for i, m := range batch {
					if errs[i] == nil {
						rec.by[name] = append(rec.by[name], m.Event)
					}
				}
				return errs
			}
		}
		if err := e.StartConsumer(context.Background(), name, cfg, opts, record); err != nil {
			e.t.Fatal(err)
		}
	}
	return rec
}

// checkNoPolledReapply fails the test for every polled event a consumer applied to an
// entity version (id and time of the change) it had applied a webhook's event of, and
// returns the number of polled events applied.
func (a *appliedEvents) checkNoPolledReapply(t *testing.T) int {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	type version struct {
		entity, id string
		at         int64
	}
	n := 0
	for name, evs := range a.by {
		webhook := map[version]string{}
		for _, ev := range evs {
			if !strings.HasPrefix(ev.ID, "pl:") {
				webhook[version{ev.Entity, ev.EntityID, ev.Time.Unix()}] = ev.ID
			}
		}
		for _, ev := range evs {
			if !strings.HasPrefix(ev.ID, "pl:") {
				continue
			}
			n++
			if by, ok := webhook[version{ev.Entity, ev.EntityID, ev.Time.Unix()}]; ok {
				t.Errorf("%s applied %s/%s at %d twice: webhook event %s, then polled event %s", name, ev.Entity, ev.EntityID, ev.Time.Unix(), by, ev.ID)
			}
		}
	}
	return n
}

// lostJobsAndAssets lists the jobs and assets whose downstream copy is older than
// ServiceTrade's (or missing) although EVENTS holds events about them.
func (e *pipelineEnv) lostJobsAndAssets() []int64 {
	e.t.Helper()
	var lost []int64
	for id := range e.entityIDs("asset") {
		want, ok := e.Stack.Account.Asset(id)
		got, found := e.Stack.Registry.Asset(id)
		if ok && (!found || got.Updated != want.Updated) {
			lost = append(lost, id)
		}
	}
	for id := range e.entityIDs("work_order") {
		want, ok := e.Stack.Account.Job(id)
		got, found := e.Stack.WorkOrders.WorkOrder(id)
		if ok && (!found || got.Updated != want.Updated) {
			lost = append(lost, id)
		}
	}
	return lost
}

// checkNoPolledRewrites fails the test for every downstream write of a polled event whose
// entity version (id and updated time) a webhook's event had already written, and returns
// the number of writes of polled events.
func (e *pipelineEnv) checkNoPolledRewrites() int {
	e.t.Helper()
	type write struct {
		op      string
		id      int64
		updated int64
	}
	webhook := map[write]string{} // → the webhook event that wrote it
	var polled []struct {
		w       write
		eventID string
	}
	note := func(w write, eventID string) {
		if strings.HasPrefix(eventID, "pl:") {
			polled = append(polled, struct {
				w       write
				eventID string
			}{w, eventID})
		} else if _, ok := webhook[w]; !ok {
			webhook[w] = eventID
		}
	}
	for _, a := range e.Stack.WorkOrders.Applied() {
		if a.Op == workordersys.OpUpsert {
			note(write{a.Op, a.ID, a.Updated}, a.EventID)
		}
	}
	for _, a := range e.Stack.Registry.Applied() {
		if a.Op == assetsys.OpPutAsset || a.Op == assetsys.OpPutLocation {
			note(write{a.Op, a.ID, a.Updated}, a.EventID)
		}
	}
	for _, p := range polled {
		if by, ok := webhook[p.w]; ok {
			e.t.Errorf("%s %d updated %d: written by webhook event %s and again by polled event %s", p.w.op, p.w.id, p.w.updated, by, p.eventID)
		}
	}
	return len(polled)
}
