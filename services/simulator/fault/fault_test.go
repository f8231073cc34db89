package fault_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fieldstream/fieldstream/services/simulator/fault"
)

func TestInjector(t *testing.T) {
	var in fault.Injector
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	mux := http.NewServeMux()
	mux.Handle("/admin/", in.AdminHandler())
	mux.Handle("/", ok)
	srv := httptest.NewServer(in.Wrap(mux))
	defer srv.Close()
	get := func() (int, string) {
		resp, err := http.Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	put := func(body string) {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/admin/faults", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT faults %s: %v %v", body, resp, err)
		}
		resp.Body.Close()
	}
	tests := []struct {
		name       string
		faults     string
		wantStatus []int
		wantRetry  string
	}{
		{name: "healthy", faults: `{}`, wantStatus: []int{200, 200}},
		{name: "outage", faults: `{"outage":true}`, wantStatus: []int{503, 503}, wantRetry: "1"},
		{name: "fail next two", faults: `{"fail_next":2,"error_status":500}`, wantStatus: []int{500, 500, 200}},
		{name: "every request fails", faults: `{"error_rate":1,"error_status":502}`, wantStatus: []int{502, 502}},
		{name: "rate limit", faults: `{"rate_per_second":1}`, wantStatus: []int{200, 429}, wantRetry: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			put(tt.faults)
			var retry string
			for i, want := range tt.wantStatus {
				got, ra := get()
				if got != want {
					t.Fatalf("request %d: %d, want %d", i, got, want)
				}
				if got != 200 {
					retry = ra
				}
			}
			if retry != tt.wantRetry {
				t.Fatalf("Retry-After %q, want %q", retry, tt.wantRetry)
			}
		})
	}
	if s := in.Stats(); s.Injected != 4 || s.OutageHits != 2 || s.RateLimited != 1 {
		t.Fatalf("stats %+v", s)
	}
}
