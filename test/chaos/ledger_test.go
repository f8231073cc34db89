package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/services/poller"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/assetsys"
	"github.com/fieldstream/fieldstream/services/simulator/paycom"
	st "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/services/simulator/workordersys"
)

const (
	job1, job2, asset1, clock1, appt1 int64 = 11, 12, 21, 31, 41
	tech                              int64 = 7
)

// fixture is a settled campaign in which everything went right: one delivery answered
// 200 with two updates of job 1, one of job 2, an asset update, a clock-out and an
// appointment change (no sink), and one delivery discarded after 503s. ids names the
// events: "job1@100", "job1@120", "job2", "asset", "clock", "appt", "discarded".
func fixture(t *testing.T) (Observations, map[string]string) {
	t.Helper()
	change := func(typ string, id, at int64, field string) st.Change {
		return st.Change{Action: st.ActionUpdated, Timestamp: at, UserID: tech, Entity: st.Ref(typ, id),
			Changeset: []st.FieldChange{{Field: field, OldValue: "a", NewValue: at}}}
	}
	acked := []st.Change{
		change(st.TypeJob, job1, 100, "status"), change(st.TypeJob, job1, 120, "status"), change(st.TypeJob, job2, 100, "status"),
		change(st.TypeAsset, asset1, 100, "status"), change(st.TypeClock, clock1, 100, "clockOut"), change(st.TypeAppointment, appt1, 100, "status"),
	}
	names := []string{"job1@100", "job1@120", "job2", "asset", "clock", "appt"}
	discarded := []st.Change{change(st.TypeJob, job2, 130, "status")}
	obs := Observations{Tenant: "t", Stored: map[string]int{}, DeadLetters: map[string][]string{},
		SenderStats: st.Stats{Deliveries: 2},
		Account: simulator.AccountSnapshot{Jobs: []int64{job1, job2}, Assets: []int64{asset1},
			ClockEvents: []st.ClockEvent{{ID: clock1, UserID: tech, ClockIn: 50, ClockOut: 100}},
			EECodes:     map[int64]string{tech: "E001"}, Updated: map[string]map[int64]int64{st.TypeJob: {job1: 120, job2: 100}}},
		// The poller walked jobs up to 150: both jobs' last versions are polled.
		Checkpoints: map[string]int64{st.TypeJob: 150}, PollOverlap: 2 * time.Second,
	}
	obs.Stored[poller.DedupID("t", "work_order", job1, 120)] = 1
	obs.Stored[poller.DedupID("t", "work_order", job2, 100)] = 1
	ids := map[string]string{}
	for _, d := range []struct {
		items   []st.Change
		status  int
		outcome string
	}{{acked, 200, simulator.OutcomeDelivered}, {discarded, 503, simulator.OutcomeDiscarded}} {
		body, err := st.NewDelivery(d.items, time.Unix(200, 0)).Body()
		if err != nil {
			t.Fatal(err)
		}
		obs.Deliveries = append(obs.Deliveries, simulator.DeliveryRecord{Attempts: 3, Status: d.status, Outcome: d.outcome, Body: body})
		parsed, err := webhook.ParseServiceTrade(body)
		if err != nil {
			t.Fatal(err)
		}
		for i, it := range parsed.Items {
			name := "discarded"
			if d.status == 200 {
				name = names[i]
				obs.Stored[it.DedupID("t")] = 1
			}
			ids[name] = it.DedupID("t")
		}
	}
	obs.WorkOrders.Applied = []workordersys.Applied{
		{Op: workordersys.OpUpsert, ID: job1, EventID: ids["job1@120"], Updated: 120}, // covers job1@100
		{Op: workordersys.OpUpsert, ID: job2, EventID: ids["job2"], Updated: 100},
	}
	obs.Assets.Applied = []assetsys.Applied{{Op: assetsys.OpPutAsset, ID: asset1, EventID: ids["asset"], Updated: 100}}
	obs.Payroll.Applied = []paycom.Applied{
		{EECode: "E001", PunchTime: 50, PunchType: paycom.PunchIn},
		{EECode: "E001", PunchTime: 100, PunchType: paycom.PunchOut},
	}
	return obs, ids
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name   string
		change func(o *Observations, ids map[string]string)
		want   Ledger // only the fields compared below
		detail string // a substring of a detail or imbalance line, if any
	}{
		{
			name: "everything applied",
			want: Ledger{Acked: 6, Applied: 5, NoSink: 1, AppliedOwnWrite: 3, Verdict: "PASS"},
		},
		{
			name: "a poller checkpoint that skipped a change",
			change: func(o *Observations, _ map[string]string) {
				delete(o.Stored, poller.DedupID("t", "work_order", job2, 100))
			},
			want:   Ledger{Acked: 6, Applied: 5, NoSink: 1, AppliedOwnWrite: 3, Verdict: "FAIL"},
			detail: "poll_skipped: work_order 12 updated 100",
		},
		{
			name: "a change after the checkpoint need not be polled yet",
			change: func(o *Observations, _ map[string]string) {
				delete(o.Stored, poller.DedupID("t", "work_order", job1, 120))
				o.Checkpoints[st.TypeJob] = 121 // 120 lies within the overlap
			},
			want: Ledger{Acked: 6, Applied: 5, NoSink: 1, AppliedOwnWrite: 3, Verdict: "PASS"},
		},
		{
			name: "a polled event's write is expected",
			change: func(o *Observations, _ map[string]string) {
				o.WorkOrders.Applied = append(o.WorkOrders.Applied, workordersys.Applied{Op: workordersys.OpUpsert, ID: job1,
					EventID: poller.DedupID("t", "work_order", job1, 120), Updated: 120})
			},
			want: Ledger{Acked: 6, Applied: 5, NoSink: 1, AppliedOwnWrite: 3, Verdict: "PASS"},
		},
		{
			name: "a Standard Webhooks delivery acked and applied",
			change: func(o *Observations, _ map[string]string) {
				o.Deliveries = append(o.Deliveries, simulator.DeliveryRecord{Source: simulator.SourceStandard, MessageID: "msg_1", Attempts: 1,
					Status: 200, Outcome: simulator.OutcomeDelivered, Body: []byte(`{"type":"work_order.updated","timestamp":"1970-01-01T00:01:50Z","data":{"id":11}}`)})
				o.Stored[webhook.StandardDedupID("t", "msg_1")] = 1
			},
			want: Ledger{Acked: 7, Applied: 6, NoSink: 1, AppliedOwnWrite: 3, Verdict: "PASS"},
		},
		{
			name: "last write of a work order missing is lost",
			change: func(o *Observations, ids map[string]string) {
				o.WorkOrders.Applied[0] = workordersys.Applied{Op: workordersys.OpUpsert, ID: job1, EventID: ids["job1@100"], Updated: 100}
			},
			want:   Ledger{Acked: 6, Applied: 4, NoSink: 1, Lost: 1, AppliedOwnWrite: 3, Verdict: "FAIL"},
			detail: "not applied at workorders",
		},
		{
			name: "a dead letter is not lost",
			change: func(o *Observations, ids map[string]string) {
				o.WorkOrders.Applied[1].Updated = 90
				o.DeadLetters[ids["job2"]] = []string{"workorders"}
			},
			want: Ledger{Acked: 6, Applied: 4, NoSink: 1, DeadLettered: 1, AppliedOwnWrite: 2, Verdict: "PASS"},
		},
		{
			name:   "acked but not stored is lost",
			change: func(o *Observations, ids map[string]string) { delete(o.Stored, ids["appt"]) },
			want:   Ledger{Acked: 6, Applied: 5, Lost: 1, AppliedOwnWrite: 3, Verdict: "FAIL"},
			detail: "not in EVENTS",
		},
		{
			name: "a work-order write applied twice",
			change: func(o *Observations, _ map[string]string) {
				o.WorkOrders.Applied = append(o.WorkOrders.Applied, o.WorkOrders.Applied[1])
			},
			want:   Ledger{Acked: 6, Applied: 5, NoSink: 1, DupApplied: 1, AppliedOwnWrite: 3, Verdict: "FAIL"},
			detail: "dup_applied: workorders",
		},
		{
			name: "a punch imported twice",
			change: func(o *Observations, _ map[string]string) {
				o.Payroll.Applied = append(o.Payroll.Applied, o.Payroll.Applied[1])
			},
			want:   Ledger{Acked: 6, Applied: 5, NoSink: 1, DupApplied: 1, AppliedOwnWrite: 3, Verdict: "FAIL"},
			detail: "dup_applied: payroll",
		},
		{
			name: "payroll without the punches of a closed clock event",
			change: func(o *Observations, _ map[string]string) {
				o.Payroll.Applied = o.Payroll.Applied[:1]
			},
			want:   Ledger{Acked: 6, Applied: 4, NoSink: 1, Lost: 1, AppliedOwnWrite: 3, Verdict: "FAIL"},
			detail: "not applied at payroll",
		},
		{
			name: "a write of an event never attempted",
			change: func(o *Observations, ids map[string]string) {
				o.WorkOrders.Applied = append(o.WorkOrders.Applied, workordersys.Applied{Op: workordersys.OpUpsert, ID: job2, EventID: ids["discarded"] + "x", Updated: 130})
			},
			want:   Ledger{Acked: 6, Applied: 5, NoSink: 1, Unexpected: 1, AppliedOwnWrite: 3, Verdict: "FAIL"},
			detail: "never attempted",
		},
		{
			name: "a discarded event may be stored and applied",
			change: func(o *Observations, ids map[string]string) {
				o.Stored[ids["discarded"]] = 1
				o.WorkOrders.Applied = append(o.WorkOrders.Applied, workordersys.Applied{Op: workordersys.OpUpsert, ID: job2, EventID: ids["discarded"], Updated: 130})
			},
			want: Ledger{Acked: 6, Applied: 5, NoSink: 1, AppliedOwnWrite: 3, Verdict: "PASS"},
		},
		{
			name:   "a stored event never attempted",
			change: func(o *Observations, _ map[string]string) { o.Stored["st:t:asset:1:updated:1"] = 1 },
			want:   Ledger{Acked: 6, Applied: 5, NoSink: 1, Unexpected: 1, AppliedOwnWrite: 3, Verdict: "FAIL"},
			detail: "never attempted",
		},
		{
			name: "an older version over a newer one",
			change: func(o *Observations, _ map[string]string) {
				o.WorkOrders.Violations = []string{"work order 11: event e (updated 100) overwrote updated 120"}
			},
			want:   Ledger{Acked: 6, Applied: 5, NoSink: 1, Unexpected: 1, Regressions: 1, AppliedOwnWrite: 3, Verdict: "FAIL"},
			detail: "regression",
		},
		{
			name: "a job ServiceTrade deleted and the system does not hold is applied",
			change: func(o *Observations, _ map[string]string) {
				o.Account.Jobs = []int64{job2}
				o.WorkOrders.Applied = o.WorkOrders.Applied[1:]
			},
			want: Ledger{Acked: 6, Applied: 5, NoSink: 1, AppliedOwnWrite: 2, Verdict: "PASS"},
		},
		{
			name:   "a delivery the sender made but did not record",
			change: func(o *Observations, _ map[string]string) { o.SenderStats.Deliveries = 3 },
			want:   Ledger{Acked: 6, Applied: 5, NoSink: 1, AppliedOwnWrite: 3, Verdict: "FAIL"},
			detail: "3 deliveries, 2 were recorded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs, ids := fixture(t)
			if tt.change != nil {
				tt.change(&obs, ids)
			}
			var got Ledger
			Judge(&got, obs)
			type figures struct{ Acked, Applied, NoSink, DeadLettered, Lost, DupApplied, Unexpected, Regressions, AppliedOwnWrite int }
			g := figures{got.Acked, got.Applied, got.NoSink, got.DeadLettered, got.Lost, got.DupApplied, got.Unexpected, got.Regressions, got.AppliedOwnWrite}
			w := tt.want
			if want := (figures{w.Acked, w.Applied, w.NoSink, w.DeadLettered, w.Lost, w.DupApplied, w.Unexpected, w.Regressions, w.AppliedOwnWrite}); g != want || got.Verdict != w.Verdict {
				t.Errorf("got %+v %s, want %+v %s\n%s", g, got.Verdict, want, w.Verdict, strings.Join(append(got.Details, got.Imbalance...), "\n"))
			}
			if got.Attempted != w.Acked+1 || got.NotAcked != 1 {
				t.Errorf("attempted %d, not acked %d; want %d and 1", got.Attempted, got.NotAcked, w.Acked+1)
			}
			all := strings.Join(append(got.Details, got.Imbalance...), "\n")
			if tt.detail != "" && !strings.Contains(all, tt.detail) {
				t.Errorf("no line says %q:\n%s", tt.detail, all)
			}
			if tt.detail == "" && all != "" {
				t.Errorf("unexpected lines:\n%s", all)
			}
			if !strings.HasPrefix(got.Line(), fmt.Sprintf("chaos faults=0 acked=%d ", w.Acked)) || !strings.HasSuffix(got.Line(), "verdict="+w.Verdict) {
				t.Errorf("line %q", got.Line())
			}
		})
	}
}

// TestJudgeFalse2xx: a Standard Webhooks delivery answered 2xx whose event EVENTS does not
// hold is lost and a false 2xx; stored and applied, it is neither.
func TestJudgeFalse2xx(t *testing.T) {
	for _, stored := range []bool{true, false} {
		obs, _ := fixture(t)
		const webhookID = "msg_false2xx"
		body := fmt.Appendf(nil, `{"type":"job.updated","timestamp":%q,"data":{"id":%d}}`, time.Unix(140, 0).UTC().Format(time.RFC3339), job2)
		obs.Deliveries = append(obs.Deliveries, simulator.DeliveryRecord{Source: simulator.SourceStandard, MessageID: webhookID,
			Attempts: 1, Status: 204, Outcome: simulator.OutcomeDelivered, Body: body})
		id := webhook.StandardDedupID("t", webhookID)
		if stored {
			obs.Stored[id] = 1
		}
		obs.WorkOrders.Applied = append(obs.WorkOrders.Applied, workordersys.Applied{Op: workordersys.OpUpsert, ID: job2, EventID: id, Updated: 140})
		var got Ledger
		Judge(&got, obs)
		want := Ledger{Acked: 7, Applied: 6, Verdict: "PASS"}
		if !stored {
			want = Ledger{Acked: 7, Applied: 5, Lost: 1, False2xx: 1, Verdict: "FAIL"}
		}
		if got.Acked != want.Acked || got.Applied != want.Applied || got.Lost != want.Lost || got.False2xx != want.False2xx || got.Verdict != want.Verdict {
			t.Errorf("stored %v: got acked=%d applied=%d lost=%d false_2xx=%d %s, want %+v\n%s", stored, got.Acked, got.Applied,
				got.Lost, got.False2xx, got.Verdict, want, strings.Join(append(got.Details, got.Imbalance...), "\n"))
		}
	}
}

func TestMaxUnavailable(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(1000, 0).Add(time.Duration(ms) * time.Millisecond) }
	ds := []simulator.DeliveryRecord{
		{Status: 200, Answered: at(0)}, {Status: 503, Answered: at(100)}, {Status: 200, Answered: at(2500)},
		{Status: 200, Answered: at(2600)}, {Status: 0}, {Status: 204, Answered: at(9000)},
	}
	if got := MaxUnavailable(ds, at(0), at(3000)); got != 2500*time.Millisecond {
		t.Errorf("MaxUnavailable = %s, want 2.5s (the 503 is no answer that counts; 9 s is out of the window)", got)
	}
	if got := MaxUnavailable(ds[:1], at(0), at(3000)); got != 0 {
		t.Errorf("one answer: %s, want 0", got)
	}
}
