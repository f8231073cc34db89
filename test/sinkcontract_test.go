package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/services/assets/assetsys"
	"github.com/fieldstream/fieldstream/services/payroll/paycom"
	assetsim "github.com/fieldstream/fieldstream/services/simulator/assetsys"
	"github.com/fieldstream/fieldstream/services/simulator/fault"
	paycomsim "github.com/fieldstream/fieldstream/services/simulator/paycom"
	"github.com/fieldstream/fieldstream/services/simulator/workordersys"
	"github.com/fieldstream/fieldstream/services/workorders/wosystem"
)

// The sink contract: every sink adapter, started against its simulator, passes the same
// suite — a valid write applies exactly once however often it is sent, every failure of
// the other side is classified so the consumer knows whether to retry (and when), invalid
// input is permanent, and the sink recovers when the faults clear. A new sink adds a row
// to contractSinks.

// contractTimeout is the adapters' request timeout in the suite: short, so that the
// latency case is quick, and far above a healthy local round trip.
const contractTimeout = 250 * time.Millisecond

// contractIDBase puts every id above 2^53, where a float64 would lose them.
const contractIDBase int64 = 1 << 53

// sinkUnderTest is one sink adapter started against a fresh simulator.
type sinkUnderTest struct {
	url    string // the simulator's base URL
	faults *fault.Injector
	// write performs valid write n through the adapter. The same n is the same write
	// (same event ids, identical punches); the suite uses increasing n, and writes of
	// different n touch different entities or times.
	write func(ctx context.Context, n int) error
	// perWrite is how many records the simulator applies for one write.
	perWrite int
	// applied is how many records of write n the simulator has applied.
	applied func(n int) int
	// appliedTotal is how many records the simulator has applied in all.
	appliedTotal func() int
	// duplicates is how many records the simulator answered as duplicates.
	duplicates func() int
	// violations are the simulator's records of an older write overwriting a newer one.
	violations func() []string
	// writeInvalid performs a write holding one invalid input beside valid ones, checks
	// what this sink promises about the valid ones, and returns the error the adapter
	// reported for the invalid one.
	writeInvalid func(t testing.TB, ctx context.Context) error
}

var contractSinks = []struct {
	name  string
	start func(t testing.TB, timeout time.Duration) sinkUnderTest
}{
	{"assetsys", startAssetSink},
	{"workordersys", startWorkOrderSink},
	{"paycom", startPayrollSink},
}

var contractCases = []struct {
	name string
	run  func(t *testing.T, s sinkUnderTest)
}{
	{"valid write applies once and is recorded", contractWriteAppliesOnce},
	{"same write again is not applied twice", contractWriteTwice},
	{"distinct writes each apply once", contractDistinctWrites},
	{"transient faults", contractTransientFaults},
	{"invalid input is permanent", contractInvalidInput},
}

func TestSinkContract(t *testing.T) {
	for _, sink := range contractSinks {
		t.Run(sink.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range contractCases {
				t.Run(tc.name, func(t *testing.T) {
					s := sink.start(t, contractTimeout)
					tc.run(t, s)
					if v := s.violations(); len(v) > 0 {
						t.Errorf("older writes overwrote newer ones: %q", v)
					}
				})
			}
		})
	}
}

func contractWriteAppliesOnce(t *testing.T, s sinkUnderTest) {
	if err := s.write(t.Context(), 0); err != nil {
		t.Fatalf("write: %v", err)
	}
	contractWantApplied(t, s, 0, s.perWrite)
	if got := s.appliedTotal(); got != s.perWrite {
		t.Errorf("applied %d records in all, want %d", got, s.perWrite)
	}
	if got := s.duplicates(); got != 0 {
		t.Errorf("%d duplicates, want 0", got)
	}
	// The admin endpoint serves the same record.
	var rec struct {
		Applied []json.RawMessage `json:"applied"`
	}
	contractGetJSON(t, s.url+"/admin/applied", &rec)
	if len(rec.Applied) != s.perWrite {
		t.Errorf("GET /admin/applied lists %d records, want %d", len(rec.Applied), s.perWrite)
	}
}

func contractWriteTwice(t *testing.T, s sinkUnderTest) {
	for i := range 2 {
		if err := s.write(t.Context(), 0); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	contractWantApplied(t, s, 0, s.perWrite)
	if got := s.duplicates(); got != s.perWrite {
		t.Errorf("%d duplicates, want %d", got, s.perWrite)
	}
}

func contractDistinctWrites(t *testing.T, s sinkUnderTest) {
	const n = 5
	for i := range n {
		if err := s.write(t.Context(), i); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	for i := range n {
		contractWantApplied(t, s, i, s.perWrite)
	}
	if got := s.appliedTotal(); got != n*s.perWrite {
		t.Errorf("applied %d records in all, want %d", got, n*s.perWrite)
	}
}

// contractTransientFaults injects each fault, checks that the write fails transiently — with
// the other side's status and Retry-After — and that the next write once the faults are
// cleared applies exactly once.
func contractTransientFaults(t *testing.T, s sinkUnderTest) {
	tests := []struct {
		name           string
		faults         fault.Faults
		wantStatus     int // 0: no answer
		wantRetryAfter time.Duration
		wantTimeout    bool
	}{
		{name: "injected 503", faults: fault.Faults{FailNext: 1}, wantStatus: http.StatusServiceUnavailable},
		{name: "injected 500", faults: fault.Faults{ErrorRate: 1, ErrorStatus: http.StatusInternalServerError}, wantStatus: http.StatusInternalServerError},
		// A bucket of 0.25 requests a second never holds a whole token: every request is
		// refused, with Retry-After (1-0.25)/0.25 = 3 s.
		{name: "429 with Retry-After", faults: fault.Faults{RatePerSecond: 0.25}, wantStatus: http.StatusTooManyRequests, wantRetryAfter: 3 * time.Second},
		{name: "outage", faults: fault.Faults{Outage: true}, wantStatus: http.StatusServiceUnavailable, wantRetryAfter: time.Second},
		// The simulator still handles the abandoned write when the latency ends, as a real
		// server would: the write after the faults clear may come first or second, and
		// must apply exactly once either way.
		{name: "latency beyond the timeout", faults: fault.Faults{LatencyMS: int(3 * contractTimeout / time.Millisecond)}, wantTimeout: true},
	}
	for n, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.faults.Set(tt.faults)
			err := s.write(t.Context(), n)
			if err == nil {
				t.Fatal("write succeeded under faults")
			}
			if got := failure.ClassOf(err); got != failure.ClassTransient {
				t.Errorf("class %s, want transient: %v", got, err)
			}
			if got := failure.StatusOf(err); got != tt.wantStatus {
				t.Errorf("status %d, want %d: %v", got, tt.wantStatus, err)
			}
			if got := failure.RetryAfterOf(err); got != tt.wantRetryAfter {
				t.Errorf("Retry-After %v, want %v", got, tt.wantRetryAfter)
			}
			if tt.wantTimeout && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("want a timeout, got %v", err)
			}
			if !tt.wantTimeout {
				// The injector answered without handling the request.
				contractWantApplied(t, s, n, 0)
			}

			s.faults.Set(fault.Faults{})
			if err := s.write(t.Context(), n); err != nil {
				t.Fatalf("write after the faults cleared: %v", err)
			}
			if tt.wantTimeout {
				// Of the abandoned write and its repetition, the later is a duplicate.
				contractPollUntil(t, "the abandoned write is handled", func() bool { return s.duplicates() >= s.perWrite })
			}
			contractWantApplied(t, s, n, s.perWrite)
		})
	}
}

func contractInvalidInput(t *testing.T, s sinkUnderTest) {
	err := s.writeInvalid(t, t.Context())
	if err == nil {
		t.Fatal("invalid input accepted")
	}
	if !failure.IsPermanent(err) {
		t.Errorf("class %s, want permanent: %v", failure.ClassOf(err), err)
	}
	if err := s.write(t.Context(), 0); err != nil {
		t.Fatalf("valid write after the invalid one: %v", err)
	}
	contractWantApplied(t, s, 0, s.perWrite)
}

func contractWantApplied(t testing.TB, s sinkUnderTest, n, want int) {
	t.Helper()
	if got := s.applied(n); got != want {
		t.Errorf("write %d: %d records applied, want %d", n, got, want)
	}
}

// contractPollUntil waits for cond, failing the test if it does not hold within 5 s.
func contractPollUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		<-tick.C
	}
}

// contractServe starts h on a local port for the rest of the test.
func contractServe(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func contractGetJSON(t testing.TB, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// Asset registry: a write is a group of two assets at one location.

func startAssetSink(t testing.TB, timeout time.Duration) sinkUnderTest {
	t.Helper()
	sim, err := assetsim.New(assetsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	url := contractServe(t, sim)
	client, err := assetsys.New(assetsys.Config{BaseURL: url, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	const location = contractIDBase + 7
	asset := func(n, k int) assetsys.Asset {
		return assetsys.Asset{
			ID:         contractIDBase + 1 + int64(10*n+2*k),
			EventID:    fmt.Sprintf("evt-asset-%d-%d", n, k),
			LocationID: location,
			Type:       "extinguisher",
			Status:     assetsys.StatusActive,
			Properties: map[string]string{"serial": fmt.Sprintf("SN-%d-%d", n, k), "manufacturer": "Amerex", "model": "B500"},
			Updated:    1767106200 + int64(n),
		}
	}
	group := func(n int) []assetsys.Asset { return []assetsys.Asset{asset(n, 0), asset(n, 1)} }
	countApplied := func(want ...assetsys.Asset) int {
		count := 0
		for _, a := range sim.Applied() {
			if a.Op == assetsim.OpPutAsset && slices.ContainsFunc(want, func(w assetsys.Asset) bool { return w.ID == a.ID && w.EventID == a.EventID }) {
				count++
			}
		}
		return count
	}
	return sinkUnderTest{
		url:    url,
		faults: sim.Faults(),
		write: func(ctx context.Context, n int) error {
			results, err := client.PutAssets(ctx, location, group(n))
			if err != nil {
				return err
			}
			for _, r := range results {
				if r.Err != nil || (r.Status != assetsys.ResultApplied && r.Status != assetsys.ResultDuplicate) {
					return fmt.Errorf("asset %d: %s: %v", r.ID, r.Status, r.Err)
				}
			}
			return nil
		},
		perWrite:     2,
		applied:      func(n int) int { return countApplied(group(n)...) },
		appliedTotal: func() int { return len(sim.Applied()) },
		duplicates:   sim.Duplicates,
		violations:   sim.Violations,
		writeInvalid: func(t testing.TB, ctx context.Context) error {
			t.Helper()
			// One bad item in a group is rejected alone; its neighbours apply.
			good1, bad, good2 := asset(100, 0), asset(100, 1), asset(100, 2)
			bad.Status = "broken"
			results, err := client.PutAssets(ctx, location, []assetsys.Asset{good1, bad, good2})
			if err != nil {
				t.Fatalf("group with one bad item failed whole: %v", err)
			}
			for i, want := range []string{assetsys.ResultApplied, assetsys.ResultRejected, assetsys.ResultApplied} {
				if results[i].Status != want {
					t.Errorf("item %d: %s, want %s (%v)", i, results[i].Status, want, results[i].Err)
				}
			}
			if results[0].Err != nil || results[2].Err != nil {
				t.Errorf("good items carry errors: %v, %v", results[0].Err, results[2].Err)
			}
			var rejected *assetsys.RejectedError
			if !errors.As(results[1].Err, &rejected) || rejected.ID != bad.ID {
				t.Errorf("bad item's error %v: want a *RejectedError for asset %d", results[1].Err, bad.ID)
			}
			if got := countApplied(good1, good2); got != 2 {
				t.Errorf("%d of the good neighbours applied, want 2", got)
			}
			if got := countApplied(bad); got != 0 {
				t.Errorf("bad item applied %d times", got)
			}
			if _, ok := sim.Asset(bad.ID); ok {
				t.Error("the registry holds the bad item")
			}
			return results[1].Err
		},
	}
}

// Work-order system: a write is one work order.

func startWorkOrderSink(t testing.TB, timeout time.Duration) sinkUnderTest {
	t.Helper()
	sim, err := workordersys.New(workordersys.Config{})
	if err != nil {
		t.Fatal(err)
	}
	url := contractServe(t, sim)
	client, err := wosystem.New(wosystem.Config{BaseURL: url, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	order := func(n int) wosystem.WorkOrder {
		return wosystem.WorkOrder{
			ID:         contractIDBase + 1 + int64(2*n),
			EventID:    fmt.Sprintf("evt-wo-%d", n),
			Number:     fmt.Sprintf("WO-%d", 1000+n),
			Status:     "scheduled",
			Type:       "inspection",
			LocationID: contractIDBase + 3,
			CustomerID: contractIDBase + 5,
			DueBy:      1767192600,
			Updated:    1767106200 + int64(n),
		}
	}
	countApplied := func(wo wosystem.WorkOrder) int {
		count := 0
		for _, a := range sim.Applied() {
			if a.Op == workordersys.OpUpsert && a.ID == wo.ID && a.EventID == wo.EventID {
				count++
			}
		}
		return count
	}
	return sinkUnderTest{
		url:          url,
		faults:       sim.Faults(),
		write:        func(ctx context.Context, n int) error { return client.Upsert(ctx, order(n)) },
		perWrite:     1,
		applied:      func(n int) int { return countApplied(order(n)) },
		appliedTotal: func() int { return len(sim.Applied()) },
		duplicates:   sim.Duplicates,
		violations:   sim.Violations,
		writeInvalid: func(t testing.TB, ctx context.Context) error {
			t.Helper()
			bad := order(100)
			bad.Status = "exploded"
			err := client.Upsert(ctx, bad)
			if got := failure.StatusOf(err); got != http.StatusUnprocessableEntity {
				t.Errorf("status %d, want 422: %v", got, err)
			}
			if got := countApplied(bad); got != 0 {
				t.Errorf("invalid work order applied %d times", got)
			}
			return err
		},
	}
}

// Payroll: a write is one batch of a clock-in and its clock-out.

func startPayrollSink(t testing.TB, timeout time.Duration) sinkUnderTest {
	t.Helper()
	const sid, token = "SID123", "s3cret-token"
	sim, err := paycomsim.New(paycomsim.Config{SID: sid, Token: token, Employees: []string{"A001", "A002"}})
	if err != nil {
		t.Fatal(err)
	}
	url := contractServe(t, sim)
	client, err := paycom.New(paycom.Config{BaseURL: url, SID: sid, Token: token, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	shift := func(eecode string, n int) []paycom.Punch {
		in := int64(1767106200 + 3600*n)
		return []paycom.Punch{
			{EECode: eecode, EntryType: paycom.EntryTypePunch, PunchTime: in, PunchType: paycom.PunchIn, Timezone: "CST"},
			{EECode: eecode, EntryType: paycom.EntryTypePunch, PunchTime: in + 1800, PunchType: paycom.PunchOut, Timezone: "CST"},
		}
	}
	countApplied := func(punches ...paycom.Punch) int {
		count := 0
		for _, a := range sim.Applied() {
			if slices.ContainsFunc(punches, func(p paycom.Punch) bool {
				return p.EECode == a.EECode && p.PunchTime == a.PunchTime && p.PunchType == a.PunchType
			}) {
				count++
			}
		}
		return count
	}
	return sinkUnderTest{
		url:    url,
		faults: sim.Faults(),
		write: func(ctx context.Context, n int) error {
			ids, err := client.ImportPunches(ctx, shift("A001", n))
			if err != nil {
				return err
			}
			if len(ids) != 2 || ids[0] < paycomsim.DefaultPunchIDBase || ids[1] <= ids[0] {
				return fmt.Errorf("punchIds %v: want two, from %d up", ids, paycomsim.DefaultPunchIDBase)
			}
			return nil
		},
		perWrite:     2,
		applied:      func(n int) int { return countApplied(shift("A001", n)...) },
		appliedTotal: func() int { return len(sim.Applied()) },
		duplicates:   sim.Duplicates,
		violations:   sim.LatePunches, // written in time order, so none may be late
		writeInvalid: func(t testing.TB, ctx context.Context) error {
			t.Helper()
			// One bad punch rejects the whole batch: nothing of it is imported.
			good := shift("A002", 0)
			batch := []paycom.Punch{good[0], {EECode: "Z999", EntryType: paycom.EntryTypePunch, PunchTime: good[0].PunchTime, PunchType: paycom.PunchIn, Timezone: "CST"}, good[1]}
			ids, err := client.ImportPunches(ctx, batch)
			if ids != nil {
				t.Errorf("rejected batch returned punchIds %v", ids)
			}
			var rejected *paycom.BatchRejectedError
			if !errors.As(err, &rejected) {
				t.Fatalf("error %v: want a *BatchRejectedError", err)
			}
			if rejected.Punches != len(batch) || len(rejected.Errors) == 0 {
				t.Errorf("BatchRejectedError %+v: want %d punches and the payroll's errors", rejected, len(batch))
			}
			if got := failure.StatusOf(err); got != http.StatusBadRequest {
				t.Errorf("status %d, want 400", got)
			}
			if got := countApplied(batch...); got != 0 {
				t.Errorf("%d punches of the rejected batch imported", got)
			}
			return err
		},
	}
}
