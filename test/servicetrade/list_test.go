package servicetrade_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	sim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// busySimulator returns a simulator whose account has run for a while, with update times
// spread over five hours after testT0.
func busySimulator(t *testing.T) *simulator {
	t.Helper()
	s := newSimulator(t, simOptions{})
	for i := range 300 {
		s.acct.NextChanges(1, testT0.Add(time.Duration(i)*time.Minute))
	}
	return s
}

// visits counts how often a walk visits each id.
type visits map[int64]int

func (v visits) check(t *testing.T, want []int64) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("nothing to walk; the test proves nothing")
	}
	for _, id := range want {
		if v[id] != 1 {
			t.Errorf("id %d visited %d times, want once", id, v[id])
		}
	}
	if len(v) != len(want) {
		t.Errorf("visited %d ids, want %d", len(v), len(want))
	}
}

func idsOf[T any](vs []T, id func(T) int64, keep func(T) bool) []int64 {
	var out []int64
	for _, v := range vs {
		if keep == nil || keep(v) {
			out = append(out, id(v))
		}
	}
	return out
}

func TestListWalkers(t *testing.T) {
	s := busySimulator(t)
	c := s.client(t, nil)
	ctx := context.Background()
	cutoff := testT0.Add(150 * time.Minute)
	after := func(updated int64) bool { return updated > cutoff.Unix() }

	tests := []struct {
		name string
		walk func(visits) error
		want []int64
	}{
		{
			name: "jobs",
			walk: func(v visits) error {
				return c.ListJobs(ctx, servicetrade.ListOptions{Limit: 7}, func(j servicetrade.Job) error { v[j.ID]++; return nil })
			},
			want: idsOf(s.acct.Jobs(), func(j sim.Job) int64 { return j.ID }, nil),
		},
		{
			name: "jobs, default page size",
			walk: func(v visits) error {
				return c.ListJobs(ctx, servicetrade.ListOptions{}, func(j servicetrade.Job) error { v[j.ID]++; return nil })
			},
			want: idsOf(s.acct.Jobs(), func(j sim.Job) int64 { return j.ID }, nil),
		},
		{
			name: "jobs updated after",
			walk: func(v visits) error {
				return c.ListJobs(ctx, servicetrade.ListOptions{Limit: 5, UpdatedAfter: cutoff}, func(j servicetrade.Job) error { v[j.ID]++; return nil })
			},
			want: idsOf(s.acct.Jobs(), func(j sim.Job) int64 { return j.ID }, func(j sim.Job) bool { return after(j.Updated) }),
		},
		{
			name: "assets",
			walk: func(v visits) error {
				return c.ListAssets(ctx, servicetrade.ListOptions{Limit: 4}, func(a servicetrade.Asset) error { v[a.ID]++; return nil })
			},
			want: idsOf(s.acct.Assets(), func(a sim.Asset) int64 { return a.ID }, nil),
		},
		{
			name: "locations",
			walk: func(v visits) error {
				return c.ListLocations(ctx, servicetrade.ListOptions{Limit: 3}, func(l servicetrade.Location) error { v[l.ID]++; return nil })
			},
			want: idsOf(s.acct.Locations(), func(l sim.Location) int64 { return l.ID }, nil),
		},
		{
			name: "clock events",
			walk: func(v visits) error {
				return c.ListClockEvents(ctx, servicetrade.ListOptions{Limit: 6}, func(e servicetrade.ClockEvent) error { v[e.ID]++; return nil })
			},
			want: idsOf(s.acct.ClockEvents(), func(e sim.ClockEvent) int64 { return e.ID }, nil),
		},
		{
			name: "onsite clock events in a window",
			walk: func(v visits) error {
				opts := servicetrade.ListOptions{Limit: 2, Activity: "onsite", StartTime: testT0.Add(time.Hour), EndTime: testT0.Add(4 * time.Hour)}
				return c.ListClockEvents(ctx, opts, func(e servicetrade.ClockEvent) error { v[e.ID]++; return nil })
			},
			want: idsOf(s.acct.ClockEvents(), func(e sim.ClockEvent) int64 { return e.ID }, func(e sim.ClockEvent) bool {
				return e.Activity == sim.ActivityOnsite && e.ClockIn >= testT0.Add(time.Hour).Unix() && e.ClockIn < testT0.Add(4*time.Hour).Unix()
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := visits{}
			if err := tt.walk(v); err != nil {
				t.Fatal(err)
			}
			v.check(t, tt.want)
		})
	}
	if got := s.grants(); got != 1 {
		t.Errorf("grants = %d, want 1 for every walk", got)
	}
}

func TestListStopsAtCallbackError(t *testing.T) {
	s := busySimulator(t)
	c := s.client(t, nil)
	stop := errors.New("enough")
	n := 0
	err := c.ListAssets(context.Background(), servicetrade.ListOptions{Limit: 2}, func(servicetrade.Asset) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Fatalf("err = %v after %d visits, want fn's own error after 3", err, n)
	}
	if got := s.api.Stats().Requests; got != 2 {
		t.Errorf("requests = %d, want 2 pages", got)
	}
}

func TestListRejectsClockFiltersElsewhere(t *testing.T) {
	s := newSimulator(t, simOptions{})
	c := s.client(t, nil)
	err := c.ListJobs(context.Background(), servicetrade.ListOptions{UserID: 1}, func(servicetrade.Job) error { return nil })
	if err == nil || !failure.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
	if got := s.api.Stats().Requests; got != 0 {
		t.Errorf("requests = %d, want none", got)
	}
}
