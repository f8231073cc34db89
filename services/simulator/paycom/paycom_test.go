package paycom_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fieldstream/fieldstream/services/simulator/paycom"
)

const sid, token = "SID1", "TOKEN1"

func start(t testing.TB) (*paycom.Payroll, string) {
	t.Helper()
	p, err := paycom.New(paycom.Config{SID: sid, Token: token, Employees: []string{"A001", "A002"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

type envelope struct {
	Result     bool              `json:"result"`
	Data       []json.RawMessage `json:"data"`
	Errors     []string          `json:"errors"`
	ErrorCount int               `json:"errorCount"`
	Records    int               `json:"records"`
}

func do(t testing.TB, method, url, body string, auth bool) (int, envelope, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(sid, token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%s %s: HTTP %d, not an envelope: %s", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode, env, string(b)
}

func punch(eecode, at, typ string) string {
	return `{"eecode":"` + eecode + `","entrytype":1,"punchtime":"` + at + `","punchtype":"` + typ + `","timezone":"CST"}`
}

func batch(punches ...string) string { return "[" + strings.Join(punches, ",") + "]" }

func TestPunchImport(t *testing.T) {
	in := punch("A001", "1591016400", "ID")
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantError  string
	}{
		{name: "a shift", body: batch(in, punch("A001", "1591045200", "OD")), wantStatus: http.StatusOK},
		{name: "unknown employee", body: batch(in, punch("Z999", "1591016400", "ID")), wantStatus: http.StatusBadRequest, wantError: paycom.MsgUnknownEmployee},
		{name: "punch type", body: batch(in, punch("A001", "1591045200", "OUT")), wantStatus: http.StatusBadRequest, wantError: paycom.MsgPunchType},
		{name: "time as a date", body: batch(in, punch("A001", "2020-06-01", "OD")), wantStatus: http.StatusBadRequest, wantError: paycom.MsgPunchTime},
		{name: "time as a number", body: `[{"eecode":"A001","entrytype":1,"punchtime":1591016400,"punchtype":"ID","timezone":"CST"}]`, wantStatus: http.StatusBadRequest},
		{name: "entry type", body: batch(in, strings.Replace(punch("A001", "1591045200", "OD"), `"entrytype":1`, `"entrytype":3`, 1)), wantStatus: http.StatusBadRequest, wantError: paycom.MsgEntryType},
		{name: "clock out before the clock in", body: batch(in, punch("A001", "1591010000", "OD")), wantStatus: http.StatusBadRequest, wantError: paycom.MsgClockOutOrder},
		{name: "empty", body: `[]`, wantStatus: http.StatusBadRequest},
		{name: "not an array", body: `{}`, wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, url := start(t)
			status, env, raw := do(t, http.MethodPost, url+"/api/v1.1/punchimport", tt.body, true)
			if status != tt.wantStatus {
				t.Fatalf("HTTP %d, want %d: %s", status, tt.wantStatus, raw)
			}
			if status != http.StatusOK {
				if env.Result || env.ErrorCount < 1 || env.ErrorCount != len(env.Errors) || len(env.Data) != 0 {
					t.Errorf("rejection %s", raw)
				}
				if tt.wantError != "" && !strings.Contains(raw, tt.wantError) {
					t.Errorf("errors %q, want %q", env.Errors, tt.wantError)
				}
				if strings.Contains(raw, "Z999") || strings.Contains(raw, "1591") {
					t.Errorf("the errors point at the punch: %s", raw)
				}
				if len(p.Applied()) != 0 || p.Rejected() != 1 {
					t.Errorf("applied %v, rejected %d", p.Applied(), p.Rejected())
				}
				return
			}
			if !env.Result || env.Records != 2 || len(env.Data) != 2 || !strings.Contains(raw, `"punchId":9007199254740993`) {
				t.Errorf("reply %s", raw)
			}
		})
	}
}

func TestDuplicatesAndLatePunches(t *testing.T) {
	p, url := start(t)
	imp := func(body string) envelope {
		t.Helper()
		status, env, raw := do(t, http.MethodPost, url+"/api/v1.1/punchimport", body, true)
		if status != http.StatusOK {
			t.Fatalf("HTTP %d: %s", status, raw)
		}
		return env
	}
	late := punch("A001", "1591045200", "ID")
	imp(batch(late, late)) // the second is the first again
	imp(batch(late))
	if p.Duplicates() != 2 || len(p.Applied()) != 1 {
		t.Errorf("duplicates %d, applied %d: want 2 and 1", p.Duplicates(), len(p.Applied()))
	}
	if len(p.LatePunches()) != 0 {
		t.Fatalf("late punches %q", p.LatePunches())
	}
	imp(batch(punch("A001", "1591016400", "ID"))) // earlier than the latest punch: accepted, a violation
	imp(batch(punch("A002", "1591016400", "ID"))) // another employee: in order
	if got := len(p.LatePunches()); got != 1 {
		t.Errorf("late punches %q, want 1", p.LatePunches())
	}
	if p.Calls() != 4 || p.Items() != 5 {
		t.Errorf("calls %d, items %d: want 4 and 5", p.Calls(), p.Items())
	}
}

func TestAuth(t *testing.T) {
	_, url := start(t)
	for _, path := range []string{"/api/v1.1/punches", "/api/v1.1/punchimport"} {
		status, env, raw := do(t, http.MethodGet, url+path, "", false)
		if status != http.StatusUnauthorized || env.Result || env.ErrorCount != 1 {
			t.Errorf("%s without credentials: HTTP %d %s", path, status, raw)
		}
	}
	if status, _, raw := do(t, http.MethodGet, url+"/admin/applied", "", false); status != http.StatusOK {
		t.Errorf("admin: HTTP %d %s", status, raw)
	}
}

func TestListPages(t *testing.T) {
	_, url := start(t)
	var punches []string
	for i := range 5 {
		punches = append(punches, punch("A001", "159101640"+string(rune('0'+i)), "ID"))
	}
	if status, _, raw := do(t, http.MethodPost, url+"/api/v1.1/punchimport", batch(punches...), true); status != http.StatusOK {
		t.Fatalf("import: HTTP %d %s", status, raw)
	}
	tests := []struct {
		query       string
		wantStatus  int
		wantRecords int
	}{
		{"?eecode=A001&page=1&pagesize=2", http.StatusPartialContent, 2},
		{"?eecode=A001&page=2&pagesize=2", http.StatusPartialContent, 2},
		{"?eecode=A001&page=3&pagesize=2", http.StatusOK, 1},
		{"?eecode=A001&page=4&pagesize=2", http.StatusOK, 0},
		{"?eecode=A001", http.StatusOK, 5},
		{"?eecode=A001&startdate=1591016401&enddate=1591016402", http.StatusOK, 2},
		{"?eecode=A002", http.StatusOK, 0},
		{"?eecode=B404", http.StatusNotFound, 0},
		{"?pagesize=501", http.StatusBadRequest, 0},
		{"?page=0", http.StatusBadRequest, 0},
		{"?startdate=yesterday", http.StatusBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, env, raw := do(t, http.MethodGet, url+"/api/v1.1/punches"+tt.query, "", true)
			if status != tt.wantStatus || env.Records != tt.wantRecords || len(env.Data) != tt.wantRecords {
				t.Errorf("HTTP %d, %d records, want %d and %d: %s", status, env.Records, tt.wantStatus, tt.wantRecords, raw)
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
		{name: "minimal", cfg: paycom.Config{SID: "s", Token: "t", Employees: []string{"A001"}}},
		{name: "no credentials", cfg: paycom.Config{Employees: []string{"A001"}}, wantErr: true},
		{name: "no employees", cfg: paycom.Config{SID: "s", Token: "t"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := paycom.New(tt.cfg); (err != nil) != tt.wantErr {
				t.Fatalf("New: %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

// TestAdminFaults drives the fault injector over HTTP: faults come before authentication,
// and the admin endpoints need none.
func TestAdminFaults(t *testing.T) {
	p, url := start(t)
	put := func(faults string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, url+"/admin/faults", strings.NewReader(faults))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT /admin/faults %s: HTTP %d", faults, resp.StatusCode)
		}
	}
	put(`{"fail_next":1,"error_status":502}`)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/api/v1.1/punches", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("faulted request: HTTP %d, want 502", resp.StatusCode)
	}
	put(`{}`)
	if status, _, raw := do(t, http.MethodGet, url+"/api/v1.1/punches", "", true); status != http.StatusOK {
		t.Errorf("after the faults cleared: HTTP %d %s", status, raw)
	}
	if got := p.Faults().Stats().Injected; got != 1 {
		t.Errorf("%d injected errors, want 1", got)
	}
}
