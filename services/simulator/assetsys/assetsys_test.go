package assetsys_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/fieldstream/fieldstream/services/simulator/assetsys"
)

func start(t testing.TB, cfg assetsys.Config) (*assetsys.Registry, string) {
	t.Helper()
	r, err := assetsys.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func do(t testing.TB, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
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
	return resp.StatusCode, string(b)
}

// The ids are above 2^53 and odd: decoding them as float64 would change them.
const group = `{"assets":[
 {"id":9007199254740993,"eventId":"e1","locationId":9007199254740995,"type":"rtu","status":"active","updated":100},
 {"id":"not a number","eventId":"e2","locationId":9007199254740995,"type":"rtu","status":"active","updated":100},
 {"id":9007199254740997,"eventId":"e3","locationId":9007199254740995,"type":"rtu","status":"active","parentId":9007199254740993,
  "properties":{"serial":"S1","manufacturer":"Trane","model":"XR"},"updated":100}]}`

func TestGroupedWrite(t *testing.T) {
	r, url := start(t, assetsys.Config{})
	status, body := do(t, http.MethodPut, url+"/locations/9007199254740995/assets", group)
	if status != http.StatusOK {
		t.Fatalf("HTTP %d: %s", status, body)
	}
	var reply struct{ Results []assetsys.Result }
	if err := json.Unmarshal([]byte(body), &reply); err != nil {
		t.Fatal(err)
	}
	want := []string{assetsys.OutcomeApplied, assetsys.OutcomeRejected, assetsys.OutcomeApplied}
	for i, res := range reply.Results {
		if res.Status != want[i] {
			t.Errorf("item %d: %+v, want %s", i, res, want[i])
		}
	}
	if reply.Results[1].Error == "" {
		t.Error("a rejected item without a reason")
	}
	status, body = do(t, http.MethodGet, url+"/assets/9007199254740997", "")
	if status != http.StatusOK || !strings.Contains(body, `"id":9007199254740997`) || !strings.Contains(body, `"parentId":9007199254740993`) {
		t.Errorf("GET asset: HTTP %d %s", status, body)
	}
	if r.Calls() != 1 || r.Items() != 3 || r.Rejected() != 1 {
		t.Errorf("calls %d, items %d, rejected %d: want 1, 3, 1", r.Calls(), r.Items(), r.Rejected())
	}
	status, body = do(t, http.MethodGet, url+"/admin/applied", "")
	var rec assetsys.Record
	if err := json.Unmarshal([]byte(body), &rec); status != http.StatusOK || err != nil {
		t.Fatalf("GET /admin/applied: HTTP %d %v", status, err)
	}
	if len(rec.Applied) != 2 || rec.Applied[0].ID != 9007199254740993 || rec.Calls != 1 || rec.Items != 3 {
		t.Errorf("record %+v", rec)
	}
}

func TestRequests(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		wantStatus               int
	}{
		{"empty group", http.MethodPut, "/locations/5/assets", `{"assets":[]}`, http.StatusBadRequest},
		{"group too large", http.MethodPut, "/locations/5/assets", `{"assets":[{},{},{}]}`, http.StatusRequestEntityTooLarge},
		{"malformed group", http.MethodPut, "/locations/5/assets", `{"assets":`, http.StatusBadRequest},
		{"bad location id", http.MethodPut, "/locations/x/assets", `{"assets":[{}]}`, http.StatusBadRequest},
		{"location", http.MethodPut, "/locations/5", `{"id":5,"eventId":"l","companyId":2,"name":"HQ","updated":1}`, http.StatusOK},
		{"location without company", http.MethodPut, "/locations/6", `{"id":6,"eventId":"l","name":"HQ","updated":1}`, http.StatusUnprocessableEntity},
		{"location id not the path's", http.MethodPut, "/locations/7", `{"id":8,"eventId":"l","companyId":2,"name":"HQ","updated":1}`, http.StatusUnprocessableEntity},
		{"get location", http.MethodGet, "/locations/5", "", http.StatusOK},
		{"get absent location", http.MethodGet, "/locations/6", "", http.StatusNotFound},
		{"get absent asset", http.MethodGet, "/assets/6", "", http.StatusNotFound},
		{"delete without event id", http.MethodDelete, "/assets/6", "", http.StatusBadRequest},
		{"delete absent asset", http.MethodDelete, "/assets/6?eventId=d", "", http.StatusNotFound},
	}
	_, url := start(t, assetsys.Config{MaxAssetsPerCall: 2})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := do(t, tt.method, url+tt.path, tt.body); status != tt.wantStatus {
				t.Errorf("HTTP %d, want %d: %s", status, tt.wantStatus, body)
			}
		})
	}
}

func TestStaleWrites(t *testing.T) {
	asset := func(event string, updated int) string {
		return `{"assets":[{"id":3,"eventId":"` + event + `","locationId":5,"type":"boiler","status":"active","updated":` + strconv.Itoa(updated) + `}]}`
	}
	tests := []struct {
		name           string
		acceptStale    bool
		wantOutcome    string
		wantViolations int
	}{
		{name: "refused", wantOutcome: assetsys.OutcomeStale},
		{name: "last writer wins", acceptStale: true, wantOutcome: assetsys.OutcomeApplied, wantViolations: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, url := start(t, assetsys.Config{AcceptStale: tt.acceptStale})
			do(t, http.MethodPut, url+"/locations/5/assets", asset("new", 200))
			_, body := do(t, http.MethodPut, url+"/locations/5/assets", asset("old", 100))
			if !strings.Contains(body, `"status":"`+tt.wantOutcome+`"`) {
				t.Errorf("older write answered %s, want %s", body, tt.wantOutcome)
			}
			if got := len(r.Violations()); got != tt.wantViolations {
				t.Errorf("%d violations, want %d", got, tt.wantViolations)
			}
		})
	}
}

// TestAdminFaults drives the fault injector over HTTP, as an operator would.
func TestAdminFaults(t *testing.T) {
	r, url := start(t, assetsys.Config{})
	steps := []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPut, "/admin/faults", `{"outage":true}`, http.StatusOK},
		{http.MethodGet, "/assets/1", "", http.StatusServiceUnavailable},
		{http.MethodGet, "/admin/applied", "", http.StatusOK}, // admin is never faulted
		{http.MethodPut, "/admin/faults", `{}`, http.StatusOK},
		{http.MethodGet, "/assets/1", "", http.StatusNotFound},
	}
	for _, st := range steps {
		if status, body := do(t, st.method, url+st.path, st.body); status != st.want {
			t.Errorf("%s %s: HTTP %d, want %d: %s", st.method, st.path, status, st.want, body)
		}
	}
	if got := r.Faults().Stats().OutageHits; got != 1 {
		t.Errorf("%d outage hits, want 1", got)
	}
}
