package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/services/payroll"
	"github.com/fieldstream/fieldstream/services/simulator"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// TestPayrollImportsEachPunchOnce runs payroll without its safeguard against identical
// punches (domain.md does not promise one) and gives the consumer every way to import a
// clock event's punches twice: a backlog, so a clock event's creation is read after it
// closed and its closing event follows; then a forced replay of every event to payroll.
// Each punch must be imported once.
func TestPayrollImportsEachPunchOnce(t *testing.T) {
	ctx := context.Background()
	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 6}, PaycomImportIdentical: true})
	e.send(300) // a backlog before the consumers start
	e.start(consumer.Config{BatchSize: 100, BatchLinger: 50 * time.Millisecond})
	natstest.Eventually(t, 60*time.Second, "every consumer settled", e.settled)
	imported := len(e.Stack.Payroll.Applied())
	if imported == 0 {
		t.Fatal("payroll imported nothing; pick another seed")
	}

	if _, err := ops.Replay(ctx, e.JS, ops.ReplaySpec{Consumer: payroll.Name, FromSeq: 1, Force: true}, false, nil); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 60*time.Second, "payroll settled after the replay", e.replaysDone)

	seen := map[string]int64{}
	for _, p := range e.Stack.Payroll.Applied() {
		k := fmt.Sprintf("%s %s %d", p.EECode, p.PunchType, p.PunchTime)
		if first, ok := seen[k]; ok {
			t.Errorf("punch %s imported twice: punchIds %d and %d", k, first, p.PunchID)
		}
		seen[k] = p.PunchID
	}
	if got := len(e.Stack.Payroll.Applied()); got != imported {
		t.Errorf("the forced replay imported %d more punches", got-imported)
	}
	if dl := e.deadLetters(); len(dl) != 0 {
		t.Errorf("%d dead letters, want none; the first: %s %s", len(dl), dl[0].Subject, dl[0].Header.Get(consumer.HeaderDLQError))
	}
	t.Logf("%d punches, each imported once; payroll saw %d imports", imported, e.Stack.Payroll.Calls())
}
