package probe_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fieldstream/fieldstream/pkg/probe"
)

func TestCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(http.StatusOK)
		case "/notready":
			http.Error(w, `{"status":"not ready","reason":"stream EVENTS: no leader"}`, http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{name: "2xx is healthy", url: srv.URL + "/readyz"},
		{name: "503 says why", url: srv.URL + "/notready", wantErr: "no leader"},
		{name: "404", url: srv.URL + "/nothing", wantErr: "404"},
		{name: "nothing listens", url: "http://127.0.0.1:1/readyz", wantErr: "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := probe.Check(t.Context(), tt.url)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Check: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Check = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestURLFromArgs(t *testing.T) {
	tests := []struct {
		args   []string
		want   string
		wantOK bool
	}{
		{[]string{"-probe", "http://x/readyz"}, "http://x/readyz", true},
		{[]string{"--probe", "http://x/readyz"}, "http://x/readyz", true},
		{[]string{"-probe=http://x/readyz"}, "http://x/readyz", true},
		{[]string{"--probe=http://x/readyz"}, "http://x/readyz", true},
		{[]string{"-probe"}, "", false},
		{[]string{"-nats-url", "nats://x"}, "", false},
		{[]string{"-probe", "http://x", "-log-level", "debug"}, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		got, ok := probe.URLFromArgs(tt.args)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("URLFromArgs(%q) = %q, %v; want %q, %v", tt.args, got, ok, tt.want, tt.wantOK)
		}
	}
}
