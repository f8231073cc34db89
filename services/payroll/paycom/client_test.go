package paycom_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/services/payroll/paycom"
	paycomsim "github.com/fieldstream/fieldstream/services/simulator/paycom"
)

const (
	sid   = "SID123"
	token = "tok-456"
	t0    = int64(1591016400)
)

func start(t testing.TB, cfg paycom.Config) (*paycomsim.Payroll, *paycom.Client) {
	t.Helper()
	sim, err := paycomsim.New(paycomsim.Config{SID: sid, Token: token, Employees: []string{"A001", "A002"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL
	if cfg.SID == "" {
		cfg.SID, cfg.Token = sid, token
	}
	client, err := paycom.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sim, client
}

func punch(eecode string, at int64, typ string) paycom.Punch {
	return paycom.Punch{EECode: eecode, EntryType: paycom.EntryTypePunch, PunchTime: at, PunchType: typ, Timezone: "CST"}
}

func TestImportPunchesRejectsWholeBatch(t *testing.T) {
	in := punch("A001", t0, paycom.PunchIn)
	tests := []struct {
		name string
		bad  paycom.Punch
	}{
		{name: "unknown employee", bad: punch("Z999", t0, paycom.PunchIn)},
		{name: "unknown punch type", bad: punch("A001", t0+60, "IN")},
		{name: "entry type not 1", bad: paycom.Punch{EECode: "A001", EntryType: 2, PunchTime: t0 + 60, PunchType: paycom.PunchOut, Timezone: "CST"}},
		{name: "time not Unix seconds", bad: punch("A001", -5, paycom.PunchOut)},
		{name: "clock out before the open clock in", bad: punch("A001", t0-60, paycom.PunchOut)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, client := start(t, paycom.Config{})
			good := punch("A002", t0, paycom.PunchIn)
			ids, err := client.ImportPunches(t.Context(), []paycom.Punch{good, in, tt.bad})
			var rejected *paycom.BatchRejectedError
			if !errors.As(err, &rejected) || !failure.IsPermanent(err) || failure.StatusOf(err) != http.StatusBadRequest {
				t.Fatalf("err %v: want a permanent *BatchRejectedError with status 400", err)
			}
			if ids != nil || rejected.Punches != 3 || len(rejected.Errors) == 0 {
				t.Errorf("ids %v, %+v", ids, rejected)
			}
			if n := len(sim.Applied()); n != 0 {
				t.Errorf("%d punches imported from a rejected batch", n)
			}
			if sim.Rejected() != 1 {
				t.Errorf("%d rejected batches, want 1", sim.Rejected())
			}
		})
	}
}

// TestSplittingFindsTheBadPunch shows what a caller does with a rejected batch: halves
// it until the bad punch stands alone, and everything else gets imported.
func TestSplittingFindsTheBadPunch(t *testing.T) {
	sim, client := start(t, paycom.Config{})
	batch := []paycom.Punch{
		punch("A001", t0, paycom.PunchIn), punch("A001", t0+3600, paycom.PunchOut),
		punch("A002", t0, paycom.PunchIn), punch("B404", t0, paycom.PunchIn),
		punch("A002", t0+3600, paycom.PunchOut),
	}
	var bad []paycom.Punch
	var importSplitting func(ps []paycom.Punch)
	importSplitting = func(ps []paycom.Punch) {
		_, err := client.ImportPunches(t.Context(), ps)
		var rejected *paycom.BatchRejectedError
		switch {
		case err == nil:
		case !errors.As(err, &rejected):
			t.Fatal(err)
		case len(ps) == 1:
			bad = append(bad, ps[0])
		default:
			importSplitting(ps[:len(ps)/2])
			importSplitting(ps[len(ps)/2:])
		}
	}
	importSplitting(batch)
	if len(bad) != 1 || bad[0].EECode != "B404" {
		t.Errorf("bad punches %v, want the one of B404", bad)
	}
	if n := len(sim.Applied()); n != 4 {
		t.Errorf("%d punches imported, want 4", n)
	}
	if v := sim.LatePunches(); len(v) > 0 {
		t.Errorf("late punches %q", v)
	}
}

func TestImportPunchesTwice(t *testing.T) {
	sim, client := start(t, paycom.Config{})
	shift := []paycom.Punch{punch("A001", t0, paycom.PunchIn), punch("A001", t0+1800, paycom.PunchOut)}
	first, err := client.ImportPunches(t.Context(), shift)
	if err != nil {
		t.Fatal(err)
	}
	second, err := client.ImportPunches(t.Context(), shift)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first, second) || first[0] < paycomsim.DefaultPunchIDBase {
		t.Errorf("punchIds %v then %v: want the same, from %d up", first, second, paycomsim.DefaultPunchIDBase)
	}
	if n := len(sim.Applied()); n != 2 || sim.Duplicates() != 2 {
		t.Errorf("%d imported, %d duplicates: want 2 and 2", n, sim.Duplicates())
	}
}

func TestWrongCredentials(t *testing.T) {
	_, client := start(t, paycom.Config{SID: sid, Token: "wrong"})
	_, err := client.ImportPunches(t.Context(), []paycom.Punch{punch("A001", t0, paycom.PunchIn)})
	var rejected *paycom.BatchRejectedError
	if !failure.IsPermanent(err) || failure.StatusOf(err) != http.StatusUnauthorized || errors.As(err, &rejected) {
		t.Fatalf("err %v: want a permanent 401 that is not a rejected batch", err)
	}
	if _, err := client.ListPunches(t.Context(), "A001", time.Time{}, time.Time{}); failure.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("ListPunches: %v, want 401", err)
	}
}

func TestListPunchesReadsEveryPage(t *testing.T) {
	sim, client := start(t, paycom.Config{PageSize: 3})
	var want []paycom.Punch
	var batch []paycom.Punch
	for i := range 4 {
		in, out := punch("A001", t0+int64(i)*7200, paycom.PunchIn), punch("A001", t0+int64(i)*7200+3600, paycom.PunchOut)
		batch = append(batch, in, out, punch("A002", t0+int64(i)*7200, paycom.PunchIn))
		want = append(want, in, out)
	}
	ids, err := client.ImportPunches(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	idOf := map[int64]int64{} // A001 punch time → punchId
	for i, p := range batch {
		if p.EECode == "A001" {
			idOf[p.PunchTime] = ids[i]
		}
	}

	tests := []struct {
		name      string
		from, to  time.Time
		want      []paycom.Punch
		wantPages int
	}{
		{name: "all", want: want, wantPages: 3},
		{name: "a window, both ends included", from: time.Unix(t0+3600, 0), to: time.Unix(t0+7200*2, 0), want: want[1:5], wantPages: 2},
		{name: "nothing", from: time.Unix(t0-100, 0), to: time.Unix(t0-1, 0), wantPages: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sim.Faults().Stats().Requests
			got, err := client.ListPunches(t.Context(), "A001", tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if pages := int(sim.Faults().Stats().Requests - before); pages != tt.wantPages {
				t.Errorf("%d pages read, want %d", pages, tt.wantPages)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d punches, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, p := range got {
				w := tt.want[i]
				w.PunchID = idOf[w.PunchTime]
				if p != w {
					t.Errorf("punch %d: %+v, want %+v", i, p, w)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     paycom.Config
		wantErr bool
	}{
		{name: "minimal", cfg: paycom.Config{BaseURL: "https://api.paycomonline.net", SID: "s", Token: "t"}},
		{name: "no credentials", cfg: paycom.Config{BaseURL: "https://api.paycomonline.net"}, wantErr: true},
		{name: "no base URL", cfg: paycom.Config{SID: "s", Token: "t"}, wantErr: true},
		{name: "page too large", cfg: paycom.Config{BaseURL: "https://api.paycomonline.net", SID: "s", Token: "t", PageSize: 501}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := paycom.New(tt.cfg); (err != nil) != tt.wantErr {
				t.Fatalf("New: %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}
