package servicetrade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/simulator/fault"
	sim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// TestGetEntity fetches one entity of each type and compares its JSON with the
// simulator's: the client's structs carry the same fields and tags.
func TestGetEntity(t *testing.T) {
	s := newSimulator(t, simOptions{})
	c := s.client(t, nil)
	ctx := context.Background()
	tests := []struct {
		name  string
		fetch func() (any, error)
		want  any
	}{
		{"job", func() (any, error) { return c.Job(ctx, s.acct.Jobs()[0].ID) }, s.acct.Jobs()[0]},
		{"asset", func() (any, error) { return c.Asset(ctx, s.acct.Assets()[0].ID) }, s.acct.Assets()[0]},
		{"location", func() (any, error) { return c.Location(ctx, s.acct.Locations()[0].ID) }, s.acct.Locations()[0]},
		{"clock event", func() (any, error) { return c.ClockEvent(ctx, s.acct.ClockEvents()[0].ID) }, s.acct.ClockEvents()[0]},
		{"appointment", func() (any, error) { return c.Appointment(ctx, s.acct.Appointments()[0].ID) }, s.acct.Appointments()[0]},
		{"deficiency", func() (any, error) { return c.Deficiency(ctx, s.acct.Deficiencies()[0].ID) }, s.acct.Deficiencies()[0]},
		{"company", func() (any, error) { return c.Company(ctx, s.acct.Companies()[0].ID) }, s.acct.Companies()[0]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fetch()
			if err != nil {
				t.Fatal(err)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Errorf("got  %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
	if got := s.grants(); got != 1 {
		t.Errorf("grants = %d, want 1 for all", got)
	}
}

func TestExactIDsAbove2To53(t *testing.T) {
	s := newSimulator(t, simOptions{account: sim.AccountConfig{IDBase: 1<<53 + 1}})
	c := s.client(t, nil)
	ctx := context.Background()
	want := s.acct.Jobs()[0]
	if want.ID == int64(float64(want.ID)) {
		t.Fatalf("id %d survives float64; the test proves nothing", want.ID)
	}
	got, err := c.Job(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || got.LocationID != want.LocationID || got.CustomerID != want.CustomerID {
		t.Fatalf("ids = %d/%d/%d, want %d/%d/%d", got.ID, got.LocationID, got.CustomerID, want.ID, want.LocationID, want.CustomerID)
	}
	listed := map[int64]bool{}
	err = c.ListJobs(ctx, servicetrade.ListOptions{Limit: 3}, func(j servicetrade.Job) error {
		listed[j.ID] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range s.acct.Jobs() {
		if !listed[j.ID] {
			t.Fatalf("job %d not listed exactly", j.ID)
		}
	}
}

// TestErrorClassification: every failure comes back classified, with the status and
// the Retry-After the API sent.
func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name           string
		faults         *fault.Faults // set after the first, healthy, request
		timeout        time.Duration
		id             func(s *simulator) int64
		wantStatus     int
		wantPermanent  bool
		wantRetryAfter time.Duration // -1: any positive
		wantIs         error
	}{
		{name: "unknown id", id: func(*simulator) int64 { return 42 }, wantStatus: 404, wantPermanent: true},
		{name: "deleted entity", id: deletedJob, wantStatus: 404, wantPermanent: true},
		{name: "invalid id, no request", id: func(*simulator) int64 { return -1 }, wantPermanent: true},
		{name: "rate limited", faults: &fault.Faults{RatePerSecond: 0.001}, wantStatus: 429, wantRetryAfter: -1},
		{name: "outage", faults: &fault.Faults{Outage: true}, wantStatus: 503, wantRetryAfter: time.Second},
		{name: "server error", faults: &fault.Faults{FailNext: 1, ErrorStatus: 500}, wantStatus: 500},
		{name: "timeout", faults: &fault.Faults{LatencyMS: 2000}, timeout: 50 * time.Millisecond, wantIs: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimulator(t, simOptions{})
			c := s.client(t, func(cfg *servicetrade.Config) { cfg.Timeout = tt.timeout })
			ctx := context.Background()
			if _, err := c.Location(ctx, s.acct.Locations()[0].ID); err != nil { // a token in hand
				t.Fatal(err)
			}
			if tt.faults != nil {
				s.api.Faults().Set(*tt.faults)
			}
			id := s.acct.Jobs()[0].ID
			if tt.id != nil {
				id = tt.id(s)
			}
			_, err := c.Job(ctx, id)
			if err == nil {
				t.Fatal("no error")
			}
			if got := failure.StatusOf(err); got != tt.wantStatus {
				t.Errorf("status = %d, want %d (%v)", got, tt.wantStatus, err)
			}
			if got := failure.IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("permanent = %v, want %v (%v)", got, tt.wantPermanent, err)
			}
			ra := failure.RetryAfterOf(err)
			if (tt.wantRetryAfter == -1 && ra <= 0) || (tt.wantRetryAfter >= 0 && ra != tt.wantRetryAfter) {
				t.Errorf("RetryAfter = %s, want %s", ra, tt.wantRetryAfter)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want it to match %v", err, tt.wantIs)
			}
		})
	}
}

// deletedJob runs the account until it deletes a job and returns that job's id.
func deletedJob(s *simulator) int64 {
	for range 20000 {
		for _, ch := range s.acct.NextChanges(1, testT0.Add(time.Hour)) {
			if ch.Action == sim.ActionDeleted && ch.Entity.Type == sim.TypeJob {
				return ch.Entity.ID
			}
		}
	}
	return 0
}

func TestErrorNamesTheRequest(t *testing.T) {
	s := newSimulator(t, simOptions{})
	c := s.client(t, nil)
	_, err := c.Asset(context.Background(), 42)
	if err == nil {
		t.Fatal("no error")
	}
	// The API's own message and its request id, for the operator.
	for _, want := range []string{"/api/asset/42", "404", "not found", "x-request-id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestTokenEndpointDown(t *testing.T) {
	tests := []struct {
		name       string
		faults     fault.Faults
		wantStatus int
	}{
		{name: "outage", faults: fault.Faults{Outage: true}, wantStatus: http.StatusServiceUnavailable},
		{name: "rate limited", faults: fault.Faults{RatePerSecond: 0.001}, wantStatus: http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimulator(t, simOptions{})
			s.api.Faults().Set(tt.faults)
			c := s.client(t, nil)
			_, err := c.Job(context.Background(), s.acct.Jobs()[0].ID)
			if failure.StatusOf(err) != tt.wantStatus || failure.IsPermanent(err) || failure.RetryAfterOf(err) <= 0 {
				t.Fatalf("err = %v, want a transient %d with Retry-After", err, tt.wantStatus)
			}
		})
	}
}

func TestNetworkErrorIsTransient(t *testing.T) {
	s := newSimulator(t, simOptions{})
	c := s.client(t, nil)
	s.srv.Close()
	_, err := c.Job(context.Background(), s.acct.Jobs()[0].ID)
	if err == nil || failure.IsPermanent(err) || failure.StatusOf(err) != 0 {
		t.Fatalf("err = %v, want a transient error without a status", err)
	}
}

func TestCallerCancellation(t *testing.T) {
	s := newSimulator(t, simOptions{})
	c := s.client(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Job(ctx, s.acct.Jobs()[0].ID)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
