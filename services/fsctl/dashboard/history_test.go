package dashboard

import (
	"testing"
	"time"
)

// TestHistoryKeepsTheLastWindow: at most one sample per interval, none older than the
// window; the ingest rate is the stream's growth between samples.
func TestHistoryKeepsTheLastWindow(t *testing.T) {
	h := &history{every: 10 * time.Second, window: time.Minute}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range 20 { // every 5 s for 100 s: half are too close to the one before
		at := t0.Add(time.Duration(i) * 5 * time.Second)
		h.add(sample{at: at, eventsSeq: uint64(i * 50), backlog: map[string]uint64{"assets": uint64(i)}, deadLetters: i / 4})
	}
	s := h.series()
	if len(s.DeadLetters) != 7 || !s.DeadLetters[0].T.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("dead letters %v: want 7 points, from 30 s (one per 10 s, up to a minute before the last at 90 s)", s.DeadLetters)
	}
	if len(s.IngestRate) != 6 || s.IngestRate[0].V != 10 { // 100 events per 10 s
		t.Errorf("ingest rate %v: want 6 points of 10/s", s.IngestRate)
	}
	if b := s.Backlog["assets"]; len(b) != 7 || b[6].V != 18 {
		t.Errorf("backlog %v", b)
	}
	if s.WindowSeconds != 60 {
		t.Errorf("window %v", s.WindowSeconds)
	}
}
