package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fieldstream/fieldstream/pkg/natstest"
)

// heldPublisher returns a publisher on a fresh EVENTS stream whose committers are all
// "busy", so enqueued requests wait until the test calls commitPending: what a loaded
// gateway sees, without depending on timing.
func heldPublisher(t *testing.T, atomic bool, maxEvents int) (*publisher, jetstream.Stream) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := context.Background()
	if err := ApplyStreams(ctx, js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if !atomic {
		cfg := st.CachedInfo().Config
		cfg.AllowAtomicPublish = false
		if st, err = js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	p := &publisher{js: js, metrics: newMetrics(prometheus.NewRegistry()), maxEvents: maxEvents, concurrency: 1}
	p.active = p.concurrency
	return p, st
}

func events(prefix string, n int) []outgoing {
	msgs := make([]outgoing, n)
	for i := range msgs {
		id := fmt.Sprintf("%s-%d", prefix, i)
		msgs[i] = outgoing{subject: "events.demo.job." + id + ".updated", dedupID: id, data: []byte(`{"id":"` + id + `"}`)}
	}
	return msgs
}

type outcome struct {
	res publishResult
	err error
}

// start enqueues each request as a concurrent publish would and returns their answers.
func start(t *testing.T, p *publisher, reqs ...[]outgoing) []chan outcome {
	t.Helper()
	answers := make([]chan outcome, len(reqs))
	for i, msgs := range reqs {
		answers[i] = make(chan outcome, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := p.persist(ctx, msgs)
			answers[i] <- outcome{res, err}
		}()
	}
	natstest.Eventually(t, 5*time.Second, "requests queued", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.pending) == len(reqs)
	})
	return answers
}

func TestGroupCommit(t *testing.T) {
	tests := []struct {
		name       string
		atomic     bool
		maxEvents  int
		stored     []string // dedup ids in EVENTS before the requests
		requests   [][]outgoing
		want       []publishResult // per request; with anySplit only their sum counts
		anySplit   bool
		wantStored uint64 // messages in EVENTS afterwards
		wantBatch  []int  // events in each batch committed
	}{{
		name:       "concurrent requests commit as one batch",
		atomic:     true,
		maxEvents:  500,
		requests:   [][]outgoing{events("a", 1), events("b", 3), events("c", 2)},
		want:       []publishResult{{Stored: 1}, {Stored: 3}, {Stored: 2}},
		wantStored: 6,
		wantBatch:  []int{6},
	}, {
		name:       "a batch is cut before a request that does not fit",
		atomic:     true,
		maxEvents:  4,
		requests:   [][]outgoing{events("a", 2), events("b", 2), events("c", 3)},
		want:       []publishResult{{Stored: 2}, {Stored: 2}, {Stored: 3}},
		wantStored: 7,
		wantBatch:  []int{4, 3},
	}, {
		name:       "a batch holding an already stored event is published event by event",
		atomic:     true,
		maxEvents:  500,
		stored:     []string{"b-1"},
		requests:   [][]outgoing{events("a", 2), events("b", 2)},
		want:       []publishResult{{Stored: 2}, {Stored: 1, Duplicates: 1}},
		wantStored: 3,
		wantBatch:  []int{4},
	}, {
		name:       "one event twice in a batch is stored once",
		atomic:     true,
		maxEvents:  500,
		requests:   [][]outgoing{events("a", 1), events("a", 1)},
		want:       []publishResult{{Stored: 1}, {Duplicates: 1}},
		anySplit:   true, // which of the two stores it is not defined
		wantStored: 1,
		wantBatch:  []int{2},
	}, {
		name:       "a stream without atomic publish still gets every event",
		atomic:     false,
		maxEvents:  500,
		requests:   [][]outgoing{events("a", 2), events("b", 1)},
		want:       []publishResult{{Stored: 2}, {Stored: 1}},
		wantStored: 3,
		wantBatch:  []int{3},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, st := heldPublisher(t, tt.atomic, tt.maxEvents)
			ctx := context.Background()
			for _, id := range tt.stored {
				if _, err := p.js.PublishMsg(ctx, outgoing{subject: "events.demo.job.x.updated", dedupID: id, data: []byte("{}")}.msg()); err != nil {
					t.Fatal(err)
				}
			}
			answers := start(t, p, tt.requests...)
			p.commitPending() // the held committer drains the queue
			var sum publishResult
			for i, a := range answers {
				got := <-a
				if got.err != nil {
					t.Fatalf("request %d: %v", i, got.err)
				}
				sum.Stored += got.res.Stored
				sum.Duplicates += got.res.Duplicates
				if !tt.anySplit && got.res != tt.want[i] {
					t.Errorf("request %d: got %+v, want %+v", i, got.res, tt.want[i])
				}
			}
			var want publishResult
			for _, w := range tt.want {
				want.Stored += w.Stored
				want.Duplicates += w.Duplicates
			}
			if sum != want {
				t.Errorf("all requests: got %+v, want %+v", sum, want)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.State.Msgs - uint64(len(tt.stored)); got != tt.wantStored {
				t.Errorf("EVENTS holds %d new messages, want %d", got, tt.wantStored)
			}
			var total int
			for _, b := range tt.wantBatch {
				total += b
			}
			var m dto.Metric
			if err := p.metrics.batches.Write(&m); err != nil {
				t.Fatal(err)
			}
			if h := m.GetHistogram(); h.GetSampleCount() != uint64(len(tt.wantBatch)) || h.GetSampleSum() != float64(total) {
				t.Errorf("batches: %d with %v events in all, want %v", h.GetSampleCount(), h.GetSampleSum(), tt.wantBatch)
			}
		})
	}
}

func TestGroupCommitOfNoEvents(t *testing.T) {
	p, _ := heldPublisher(t, true, 500)
	p.active = 0
	res, err := p.persist(context.Background(), nil)
	if err != nil || res != (publishResult{}) {
		t.Fatalf("got %+v, %v; want nothing stored and no error", res, err)
	}
}
