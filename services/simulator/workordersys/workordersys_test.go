package workordersys_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/fieldstream/fieldstream/services/simulator/workordersys"
)

func start(t testing.TB, cfg workordersys.Config) (*workordersys.System, string) {
	t.Helper()
	s, err := workordersys.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func do(t testing.TB, method, url, body string) (*http.Response, string) {
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
	return resp, string(b)
}

// order is work order 9007199254740993 (above 2^53, odd: a float64 would change it).
func order(event string, updated int) string {
	return `{"id":9007199254740993,"eventId":"` + event + `","number":"WO-7","status":"scheduled","type":"repair",` +
		`"locationId":9007199254740995,"updated":` + strconv.Itoa(updated) + `}`
}

const orderURL = "/work-orders/9007199254740993"

func TestUpsert(t *testing.T) {
	s, url := start(t, workordersys.Config{})
	steps := []struct {
		name           string
		body           string
		wantStatus     int
		wantReplayed   bool
		wantViolations int
	}{
		{name: "create", body: order("e1", 100), wantStatus: http.StatusOK},
		{name: "same event again", body: order("e1", 100), wantStatus: http.StatusOK, wantReplayed: true},
		{name: "newer", body: order("e2", 200), wantStatus: http.StatusOK},
		{name: "older overwrites newer", body: order("e0", 50), wantStatus: http.StatusOK, wantViolations: 1},
		{name: "malformed", body: `{"id":`, wantStatus: http.StatusBadRequest, wantViolations: 1},
		{name: "id not the path's", body: strings.Replace(order("e3", 300), "740993", "740997", 1), wantStatus: http.StatusUnprocessableEntity, wantViolations: 1},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp, body := do(t, http.MethodPut, url+orderURL, st.body)
			if resp.StatusCode != st.wantStatus {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, st.wantStatus, body)
			}
			if got := resp.Header.Get(workordersys.ReplayHeader) == "true"; got != st.wantReplayed {
				t.Errorf("replayed %v, want %v", got, st.wantReplayed)
			}
			if got := len(s.Violations()); got != st.wantViolations {
				t.Errorf("%d violations, want %d", got, st.wantViolations)
			}
		})
	}
	resp, body := do(t, http.MethodGet, url+orderURL, "")
	var wo workordersys.WorkOrder
	if err := json.Unmarshal([]byte(body), &wo); resp.StatusCode != http.StatusOK || err != nil || wo.ID != 9007199254740993 || wo.EventID != "e0" {
		t.Errorf("GET: HTTP %d %s", resp.StatusCode, body)
	}
	if s.Calls() != len(steps) || s.Duplicates() != 1 || s.Rejected() != 2 || len(s.Applied()) != 3 {
		t.Errorf("calls %d, duplicates %d, rejected %d, applied %d", s.Calls(), s.Duplicates(), s.Rejected(), len(s.Applied()))
	}
}

func TestDeleteAndGone(t *testing.T) {
	tests := []struct {
		name            string
		goneAfterDelete bool
		wantAfter       int
	}{
		{name: "404 after delete", wantAfter: http.StatusNotFound},
		{name: "410 after delete", goneAfterDelete: true, wantAfter: http.StatusGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url := start(t, workordersys.Config{GoneAfterDelete: tt.goneAfterDelete})
			do(t, http.MethodPut, url+orderURL, order("e1", 100))
			for _, step := range []struct {
				method, path string
				want         int
			}{
				{http.MethodDelete, orderURL, http.StatusBadRequest}, // no eventId
				{http.MethodDelete, orderURL + "?eventId=d1", http.StatusNoContent},
				{http.MethodDelete, orderURL + "?eventId=d1", http.StatusNoContent}, // duplicate
				{http.MethodDelete, orderURL + "?eventId=d2", tt.wantAfter},
				{http.MethodGet, orderURL, tt.wantAfter},
				{http.MethodGet, "/work-orders/5", http.StatusNotFound},
				{http.MethodDelete, "/work-orders/5?eventId=d3", http.StatusNotFound},
			} {
				if resp, body := do(t, step.method, url+step.path, ""); resp.StatusCode != step.want {
					t.Errorf("%s %s: HTTP %d, want %d: %s", step.method, step.path, resp.StatusCode, step.want, body)
				}
			}
			// An older version does not quietly bring the deleted work order back.
			do(t, http.MethodPut, url+orderURL, order("late", 90))
			if got := len(s.Violations()); got != 1 {
				t.Errorf("%d violations, want 1", got)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	if _, err := workordersys.New(workordersys.Config{Statuses: []string{""}}); err == nil {
		t.Error("an empty status accepted")
	}
	s, url := start(t, workordersys.Config{Statuses: []string{"open"}, Types: []string{"repair"}})
	if resp, body := do(t, http.MethodPut, url+orderURL, order("e1", 1)); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("status outside Config.Statuses: HTTP %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, http.MethodPut, url+orderURL, strings.Replace(order("e1", 1), "scheduled", "open", 1)); resp.StatusCode != http.StatusOK {
		t.Errorf("status in Config.Statuses: HTTP %d %s", resp.StatusCode, body)
	}
	if len(s.Applied()) != 1 {
		t.Errorf("applied %v", s.Applied())
	}
}
