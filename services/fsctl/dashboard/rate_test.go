package dashboard

import (
	"math"
	"testing"
	"time"
)

func TestDashboardRateMeter(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	type reading struct {
		after time.Duration // since t0
		seq   uint64
	}
	tests := []struct {
		name     string
		readings []reading
		want     float64 // of the last reading; NaN: no rate yet
		wantSpan time.Duration
	}{
		{name: "one reading has no rate", readings: []reading{{0, 100}}, want: math.NaN()},
		{name: "two readings too close", readings: []reading{{0, 100}, {100 * time.Millisecond, 110}}, want: math.NaN()},
		{name: "two readings", readings: []reading{{0, 100}, {2 * time.Second, 110}}, want: 5, wantSpan: 2 * time.Second},
		{name: "idle stream", readings: []reading{{0, 100}, {2 * time.Second, 100}}, want: 0, wantSpan: 2 * time.Second},
		{name: "averaged over the window", readings: []reading{{0, 0}, {2 * time.Second, 40}, {4 * time.Second, 40}, {10 * time.Second, 100}}, want: 10, wantSpan: 10 * time.Second},
		{name: "readings older than the window are dropped", readings: []reading{{0, 0}, {20 * time.Second, 1000}, {40 * time.Second, 1100}, {50 * time.Second, 1200}}, want: 200.0 / 30, wantSpan: 30 * time.Second},
		{name: "a long pause starts over", readings: []reading{{0, 0}, {2 * time.Second, 10}, {10 * time.Minute, 5000}}, want: math.NaN()},
		{name: "a recreated stream starts over", readings: []reading{{0, 500}, {2 * time.Second, 600}, {4 * time.Second, 3}}, want: math.NaN()},
		{name: "after a restart it measures again", readings: []reading{{0, 500}, {2 * time.Second, 3}, {4 * time.Second, 13}}, want: 5, wantSpan: 2 * time.Second},
		{name: "dense readings keep the oldest within the window", readings: []reading{{0, 0}, {100 * time.Millisecond, 1}, {200 * time.Millisecond, 2}, {4 * time.Second, 40}}, want: 10, wantSpan: 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newRateMeter(30*time.Second, 8)
			var got float64
			var span time.Duration
			var ok bool
			for _, r := range tt.readings {
				got, span, ok = m.observe(t0.Add(r.after), r.seq)
			}
			if math.IsNaN(tt.want) {
				if ok {
					t.Fatalf("rate %v over %s, want none yet", got, span)
				}
				return
			}
			if !ok || math.Abs(got-tt.want) > 1e-9 || span != tt.wantSpan {
				t.Fatalf("rate %v over %s (ok %v), want %v over %s", got, span, ok, tt.want, tt.wantSpan)
			}
		})
	}
}

// The ring holds at most its size, however often it is read.
func TestDashboardRateMeterRingIsBounded(t *testing.T) {
	m := newRateMeter(8*time.Second, 8) // a sample at most every second
	t0 := time.Now()
	for i := range 1000 {
		m.observe(t0.Add(time.Duration(i)*100*time.Millisecond), uint64(i))
	}
	if m.n != 8 || len(m.ring) != 8 {
		t.Fatalf("%d samples in a ring of %d", m.n, len(m.ring))
	}
	// 100 events/s: one every 100 ms.
	if got, _, ok := m.observe(t0.Add(100*time.Second), 1000); !ok || math.Abs(got-10) > 1e-9 {
		t.Fatalf("rate %v (ok %v), want 10", got, ok)
	}
}
