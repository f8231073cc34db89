package test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/fault"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/services/workorders"
	"github.com/fieldstream/fieldstream/streams"
)

// TestReplayAfterSinkLosesData: the work-order system loses recent writes (a restore from
// an older backup); a forced replay of the window to the workorders consumer restores every
// one, and no other consumer sees anything. A dry run counts exactly what the run sends,
// and an unforced replay is absorbed by the ledger.
func TestReplayAfterSinkLosesData(t *testing.T) {
	ctx := context.Background()
	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 8}})
	e.start(consumer.Config{})
	start := time.Now()
	e.send(40)
	natstest.Eventually(t, 30*time.Second, "settled", e.settled)
	lost := e.Stack.WorkOrders.LoseData(start.Unix())
	if lost == 0 {
		t.Fatal("the system lost nothing; the test needs a loss")
	}
	assetsCalls, payrollCalls := e.Stack.Registry.Calls(), e.Stack.Payroll.Calls()

	spec := ops.ReplaySpec{Consumer: workorders.Name, Since: start.Add(-time.Second)}
	plan, err := ops.Replay(ctx, e.JS, spec, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Total == 0 || plan.Total != sum(plan.BySubject) {
		t.Fatalf("dry run: %+v", plan)
	}
	// Without --force the ledger knows every event: nothing reaches the system.
	calls := e.Stack.WorkOrders.Calls()
	res, err := ops.Replay(ctx, e.JS, spec, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != plan.Total || res.Total != plan.Total || !strings.HasPrefix(res.Replay, workorders.Name+"-replay-") {
		t.Fatalf("replay %s settled %d of %d; the dry run counted %d", res.Replay, res.Replayed, res.Total, plan.Total)
	}
	if got := e.Stack.WorkOrders.Calls(); got != calls {
		t.Fatalf("an unforced replay reached the system: %d calls, was %d", got, calls)
	}

	spec.Force = true
	res, err = ops.Replay(ctx, e.JS, spec, false, nil)
	if err != nil || res.Replayed != plan.Total {
		t.Fatalf("forced replay: %+v, %v", res, err)
	}
	e.checkConverged()
	if e.Stack.Registry.Calls() != assetsCalls || e.Stack.Payroll.Calls() != payrollCalls {
		t.Fatalf("the replay reached other consumers: registry %d→%d calls, payroll %d→%d", assetsCalls, e.Stack.Registry.Calls(), payrollCalls, e.Stack.Payroll.Calls())
	}
	natstest.Eventually(t, 10*time.Second, "the replay consumers gone", e.replaysDone)
	t.Logf("work-order system lost %d work orders; replay of %d events restored them", lost, plan.Total)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// replaysDone reports whether no replay is left on EVENTS: each was settled and deleted by
// its service.
func (e *pipelineEnv) replaysDone() bool {
	st, err := ops.GetStatus(context.Background(), e.JS)
	return err == nil && len(st.Replays) == 0
}

// TestRedriveOneFingerprint: two kinds of failure are dead-lettered; redriving one kind,
// after its cause is fixed, applies exactly those entries and removes them from DLQ, and
// leaves the other kind alone.
func TestRedriveOneFingerprint(t *testing.T) {
	ctx := context.Background()
	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 9}})
	e.start(consumer.Config{})
	e.Stack.WorkOrders.Faults().Set(fault.Faults{ErrorRate: 1, ErrorStatus: 422})
	e.send(20)
	unknown := stsim.NewDelivery([]stsim.Change{{Action: "updated", Timestamp: time.Now().Unix(), UserID: 1, Entity: stsim.Ref("job", 42)}}, time.Now())
	if r := e.Sender.Deliver(ctx, unknown); !r.Delivered {
		t.Fatal("unknown-job delivery failed")
	}
	natstest.Eventually(t, 30*time.Second, "settled", e.settled)
	e.Stack.WorkOrders.Faults().Set(fault.Faults{})

	letters, err := ops.ListDeadLetters(ctx, e.JS, ops.Selection{Consumer: workorders.Name})
	if err != nil {
		t.Fatal(err)
	}
	groups := ops.GroupDeadLetters(letters)
	if len(groups) != 2 {
		t.Fatalf("%d fingerprints, want 2 (the 422s and the unknown job): %+v", len(groups), groups)
	}
	var rejected ops.Group
	for _, g := range groups {
		if strings.Contains(g.Sample, "HTTP 422") {
			rejected = g
		}
	}
	if rejected.Count < 2 {
		t.Fatalf("the 422 group: %+v", rejected)
	}
	dry, err := ops.Redrive(ctx, e.JS, ops.Selection{Fingerprint: rejected.Fingerprint}, true)
	if err != nil || len(dry) != rejected.Count {
		t.Fatalf("dry run selected %d, want %d (%v)", len(dry), rejected.Count, err)
	}
	before := len(e.Stack.WorkOrders.Applied())
	sent, err := ops.Redrive(ctx, e.JS, ops.Selection{Fingerprint: rejected.Fingerprint}, false)
	if err != nil || len(sent) != rejected.Count {
		t.Fatalf("redrove %d, want %d (%v)", len(sent), rejected.Count, err)
	}
	natstest.Eventually(t, 30*time.Second, "redriven entries left DLQ", func() bool {
		left, err := ops.ListDeadLetters(ctx, e.JS, ops.Selection{Fingerprint: rejected.Fingerprint})
		return err == nil && len(left) == 0
	})
	left, err := ops.ListDeadLetters(ctx, e.JS, ops.Selection{})
	if err != nil || len(left) != 1 || !strings.Contains(left[0].Error, "404") {
		t.Fatalf("after the redrive DLQ holds %+v, want only the unknown job (%v)", left, err)
	}
	applied := len(e.Stack.WorkOrders.Applied()) - before
	if applied > rejected.Count || applied == 0 {
		t.Fatalf("the redrive applied %d writes for %d dead letters", applied, rejected.Count)
	}
	e.checkConverged()
}

// TestConsumerAddSince: a consumer added with --deliver since=T receives exactly the events
// stored since T.
func TestConsumerAddSince(t *testing.T) {
	ctx := context.Background()
	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 10}})
	e.send(10)
	s, _ := e.JS.Stream(ctx, streams.Events)
	info, _ := s.Info(ctx)
	before := info.State.Msgs
	last, err := s.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	since := last.Time.Add(time.Millisecond)
	natstest.Eventually(t, 5*time.Second, "clock moved past the last event", func() bool { return time.Now().After(since.Add(time.Second)) })
	e.send(10)
	info, _ = s.Info(ctx)
	want := info.State.Msgs - before

	ci, err := ops.AddConsumer(ctx, e.JS, "audit", []string{"events.>"}, ops.Deliver("since="+since.UTC().Format(time.RFC3339Nano)), "test")
	if err != nil {
		// RFC 3339 without fractions is what operators type; the test needs sub-second.
		t.Fatal(err)
	}
	if ci.NumPending != want {
		t.Fatalf("new consumer has %d pending, want the %d events since %s", ci.NumPending, want, since)
	}
	if _, err := ops.AddConsumer(ctx, e.JS, "audit", []string{"events.>"}, "all", ""); err == nil {
		t.Fatal("adding an existing consumer again succeeded")
	}
	c, _ := e.JS.Consumer(ctx, streams.Events, "audit")
	b, err := c.Fetch(int(want)+5, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range b.Messages() {
		meta, _ := m.Metadata()
		if meta.Timestamp.Before(since) {
			t.Fatalf("event from %s, before since=%s", meta.Timestamp, since)
		}
		n++
	}
	if uint64(n) != want {
		t.Fatalf("received %d events, want %d", n, want)
	}
}

// TestStatusAgreesWithNatsCLI drives the real nats CLI against the test server: its
// consumer report shows the backlog, DLQ holds the dead letters, a paused consumer shows
// paused, and fsctl's status says the same numbers.
func TestStatusAgreesWithNatsCLI(t *testing.T) {
	cli := natsCLI(t)
	ctx := context.Background()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	e := newPipelineEnvOn(t, js, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 12}})
	e.start(consumer.Config{})
	e.Stack.WorkOrders.Faults().Set(fault.Faults{ErrorRate: 1, ErrorStatus: 422})
	e.send(15)
	natstest.Eventually(t, 30*time.Second, "settled", e.settled)
	if _, err := ops.PauseConsumer(ctx, js, "payroll", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.send(5) // backlog for the paused consumer
	natstest.Eventually(t, 30*time.Second, "others settled", func() bool { return e.Settled(ctx, "assets", "workorders") })

	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"--server", srv.ClientURL()}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("nats %v: %v\n%s", args, err, out)
		}
		return out
	}
	report := string(run("consumer", "report", "EVENTS"))
	for _, name := range []string{"assets", "workorders", "payroll"} {
		if !strings.Contains(report, name) {
			t.Fatalf("consumer report lacks %s:\n%s", name, report)
		}
	}
	st, err := ops.GetStatus(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Consumers {
		if c.Stream != "EVENTS" {
			continue
		}
		var info struct {
			NumPending     uint64 `json:"num_pending"`
			NumAckPending  int    `json:"num_ack_pending"`
			NumRedelivered int    `json:"num_redelivered"`
			Paused         bool   `json:"paused"`
		}
		if err := json.Unmarshal(run("consumer", "info", "EVENTS", c.Name, "--json"), &info); err != nil {
			t.Fatal(err)
		}
		if info.NumPending != c.Pending || info.NumAckPending != c.AckPending || info.NumRedelivered != c.Redelivered || info.Paused != c.Paused {
			t.Errorf("%s: nats CLI says %+v, fsctl status says %+v", c.Name, info, c)
		}
		if c.Name == "payroll" && (!c.Paused || c.Pending == 0) {
			t.Errorf("payroll should be paused with a backlog: %+v", c)
		}
	}
	var dlq struct {
		State struct {
			Messages uint64 `json:"messages"`
			LastSeq  uint64 `json:"last_seq"`
		} `json:"state"`
	}
	if err := json.Unmarshal(run("stream", "info", "DLQ", "--json"), &dlq); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, g := range st.DeadLetters {
		total += g.Count
	}
	if dlq.State.Messages == 0 || uint64(total) != dlq.State.Messages {
		t.Fatalf("DLQ: nats CLI counts %d, fsctl groups count %d", dlq.State.Messages, total)
	}
	// `nats stream view DLQ` pages interactively; `stream get` shows one dead letter.
	got := string(run("stream", "get", "DLQ", strconv.FormatUint(dlq.State.LastSeq, 10)))
	if !strings.Contains(got, consumer.HeaderDLQError) || !strings.Contains(got, "422") || !strings.Contains(got, consumer.HeaderDLQSubject) {
		t.Fatalf("nats stream get DLQ shows no provenance:\n%s", got)
	}

}
