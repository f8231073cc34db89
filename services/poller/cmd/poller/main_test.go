package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/services/poller"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/streams"
)

// world is an embedded JetStream with EVENTS and a simulated ServiceTrade API whose
// account changed a little over the last minutes.
func world(t *testing.T) (natsURL, apiURL string, nc *nats.Conn) {
	t.Helper()
	srv := natstest.RunServer(t)
	nc, js := natstest.Connect(t, srv)
	cfgs, err := streams.Definitions()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streams.ApplyConfigs(context.Background(), js, cfgs); err != nil {
		t.Fatal(err)
	}
	acct, err := stsim.NewAccount(stsim.AccountConfig{Seed: 1, Start: time.Now().Add(-30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	acct.NextChanges(20, time.Now().Add(-10*time.Minute))
	api, err := stsim.NewAPI(acct, stsim.APIConfig{ClientID: "fieldstream", ClientSecret: "dev-secret"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api)
	t.Cleanup(hs.Close)
	return srv.ClientURL(), hs.URL + "/api", nc
}

func env(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

// runMain runs the poller as main does, with the given arguments, environment and output.
func runMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return daemon.Run(ctx, program(), daemon.Env{Args: args, Getenv: getenv, Stdout: stdout, Stderr: stderr})
}

func TestOnce(t *testing.T) {
	natsURL, apiURL, _ := world(t)
	var stdout, stderr bytes.Buffer
	err := runMain(context.Background(), []string{"-tenant", "demo", "-once", "-since", "1h"}, env(map[string]string{
		"NATS_URL": natsURL, "FS_SERVICETRADE_URL": apiURL, "FS_SERVICETRADE_CLIENT_SECRET": "dev-secret",
	}), &stdout, &stderr)
	if err != nil {
		t.Fatalf("runMain: %v\n%s", err, stderr.String())
	}
	var res poller.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("stdout %q: %v", stdout.String(), err)
	}
	if tot := res.Total(); len(res.Kinds) != 4 || tot.Published == 0 || tot.Seen != tot.Published {
		t.Fatalf("result %+v", res)
	}
}

// TestServesPollRequests: the long-running poller answers poll requests, and returns
// without an error when its context ends.
func TestServesPollRequests(t *testing.T) {
	natsURL, apiURL, nc := world(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- runMain(ctx, []string{"-tenant", "demo", "-interval", "1h", "-nats-url", natsURL, "-servicetrade-url", apiURL},
			env(map[string]string{"FS_SERVICETRADE_CLIENT_SECRET": "dev-secret"}), &bytes.Buffer{}, &stderr)
	}()
	var reply poller.RunReply
	natstest.Eventually(t, 10*time.Second, "a poll request answered", func() bool {
		m, err := nc.Request(poller.RunSubject("demo"), []byte(`{"since":"1h"}`), 10*time.Second)
		if errors.Is(err, nats.ErrNoResponders) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(m.Data, &reply); err != nil {
			t.Fatal(err)
		}
		return true
	})
	if reply.Error != "" || len(reply.Kinds) != 4 {
		t.Fatalf("reply %+v", reply)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runMain: %v\n%s", err, stderr.String())
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"no tenant", []string{}, map[string]string{"FS_SERVICETRADE_CLIENT_SECRET": "s"}, "-tenant"},
		{"tenant that would split a subject", []string{"-tenant", "a.b"}, map[string]string{"FS_SERVICETRADE_CLIENT_SECRET": "s"}, "-tenant"},
		{"no ServiceTrade secret", []string{"-tenant", "demo"}, nil, "FS_SERVICETRADE_CLIENT_SECRET"},
		{"bad since", []string{"-tenant", "demo", "-since", "yesterday"}, map[string]string{"FS_SERVICETRADE_CLIENT_SECRET": "s"}, "-since"},
		{"bad interval from the environment", []string{"-tenant", "demo"}, map[string]string{"FS_INTERVAL": "0s", "FS_SERVICETRADE_CLIENT_SECRET": "s"}, "-interval"},
		{"bad log level", []string{"-tenant", "demo", "-log-level", "loud"}, nil, "-log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runMain(context.Background(), tt.args, env(tt.env), &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("runMain: %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
