package dashboard

import (
	"context"
	"sync"
	"time"
)

// History is what the page charts: the ingest rate, each consumer's backlog and the dead
// letters over the last Options.HistoryWindow, one point per Options.SampleEvery at most.
// It begins when the dashboard process started reading (Run samples on its own; without
// it, only reads made for pages or scrapes are kept).
type History struct {
	WindowSeconds float64 `json:"window_seconds"`
	// IngestRate is events per second stored in EVENTS between one point and the one before.
	IngestRate []Point `json:"ingest_rate"`
	// Backlog is each EVENTS consumer's pending plus ack pending, by consumer name.
	Backlog map[string][]Point `json:"backlog"`
	// DeadLetters is the dead letters waiting in DLQ.
	DeadLetters []Point `json:"dead_letters"`
}

// Point is one value at one time.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

type sample struct {
	at          time.Time
	eventsSeq   uint64
	backlog     map[string]uint64
	deadLetters int
}

// history keeps the samples of the last window, at most one per every. Safe for
// concurrent use.
type history struct {
	every, window time.Duration
	mu            sync.Mutex
	samples       []sample
}

// add keeps s unless the last sample is younger than every, and drops what is older than
// the window.
func (h *history) add(s sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.samples); n > 0 && s.at.Sub(h.samples[n-1].at) < h.every {
		return
	}
	h.samples = append(h.samples, s)
	cut := 0
	for cut < len(h.samples) && s.at.Sub(h.samples[cut].at) > h.window {
		cut++
	}
	h.samples = h.samples[cut:]
}

func (h *history) series() History {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := History{WindowSeconds: h.window.Seconds(), IngestRate: []Point{}, Backlog: map[string][]Point{}, DeadLetters: []Point{}}
	for i, s := range h.samples {
		if i > 0 {
			prev := h.samples[i-1]
			if dt := s.at.Sub(prev.at).Seconds(); dt > 0 && s.eventsSeq >= prev.eventsSeq {
				out.IngestRate = append(out.IngestRate, Point{s.at, float64(s.eventsSeq-prev.eventsSeq) / dt})
			}
		}
		for name, b := range s.backlog {
			out.Backlog[name] = append(out.Backlog[name], Point{s.at, float64(b)})
		}
		out.DeadLetters = append(out.DeadLetters, Point{s.at, float64(s.deadLetters)})
	}
	return out
}

// Run reads the status every Options.SampleEvery until ctx ends, so that the charts cover
// the last hour whether or not a page is open; it returns nil. Reads fail quietly here
// (pages show the error).
func (d *Dashboard) Run(ctx context.Context) error {
	t := time.NewTicker(d.opts.SampleEvery)
	defer t.Stop()
	for {
		_, _ = d.Snapshot(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
