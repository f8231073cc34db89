package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/streams"
)

// heldPublisher returns a publisher on a fresh EVENTS stream whose committers are all
// "busy", so enqueued requests wait until the test calls commitPending: what a loaded
// gateway sees, without depending on timing.
func heldPublisher(t *testing.T, maxEvents int, adjust func(*jetstream.StreamConfig)) (*publisher, jetstream.Stream) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := context.Background()
	if _, err := streams.Apply(ctx, js, streams.Options{}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		cfg := st.CachedInfo().Config
		adjust(&cfg)
		if st, err = js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	m, err := newMetrics(prometheus.NewRegistry(), noTenants{})
	if err != nil {
		t.Fatal(err)
	}
	p := newPublisher(Config{JetStream: js, Logger: zerolog.Nop(), CommitMaxEvents: maxEvents, CommitConcurrency: 1}, m)
	p.active = p.concurrency
	return p, st
}

func events(prefix string, n int) []event.Message {
	msgs := make([]event.Message, n)
	for i := range msgs {
		id := fmt.Sprintf("%s-%d", prefix, i)
		msgs[i] = event.Message{Subject: "events.demo.job." + id + ".updated", ID: id, Data: []byte(`{"id":"` + id + `"}`)}
	}
	return msgs
}

type outcome struct {
	res publishResult
	err error
}

// start makes each request in turn, as concurrent publishes would, and returns their
// answers: each is either queued for the held committer or, published on its own,
// answered before the next one starts.
func start(t *testing.T, p *publisher, reqs ...[]event.Message) []chan outcome {
	t.Helper()
	answers := make([]chan outcome, len(reqs))
	var answered atomic.Int32
	for i, msgs := range reqs {
		answers[i] = make(chan outcome, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := p.persist(ctx, msgs)
			answers[i] <- outcome{res, err}
			answered.Add(1)
		}()
		natstest.Eventually(t, 5*time.Second, fmt.Sprintf("request %d queued or answered", i), func() bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			return len(p.pending)+int(answered.Load()) == i+1
		})
	}
	return answers
}

func TestGroupCommit(t *testing.T) {
	big := event.Message{Subject: "events.demo.job.big.updated", ID: "big", Data: bytes.Repeat([]byte("x"), 4096)}
	noAtomic := func(c *jetstream.StreamConfig) { c.AllowAtomicPublish = false }
	tests := []struct {
		name         string
		adjust       func(*jetstream.StreamConfig) // EVENTS' configuration
		maxEvents    int
		stored       []string // dedup ids in EVENTS before the requests
		requests     [][]event.Message
		beforeCommit func(t *testing.T, js jetstream.JetStream)
		want         []publishResult // per request; with anySplit only their sum counts
		wantErr      []error         // per request, when some fail
		anySplit     bool
		wantStored   uint64 // messages in EVENTS afterwards
		wantBatch    []int  // events in each batch sent
	}{{
		name:       "concurrent requests commit as one batch",
		maxEvents:  500,
		requests:   [][]event.Message{events("a", 1), events("b", 3), events("c", 2)},
		want:       []publishResult{{Stored: 1}, {Stored: 3}, {Stored: 2}},
		wantStored: 6,
		wantBatch:  []int{6},
	}, {
		name:       "a batch is cut before a request that does not fit",
		maxEvents:  4,
		requests:   [][]event.Message{events("a", 2), events("b", 2), events("c", 3)},
		want:       []publishResult{{Stored: 2}, {Stored: 2}, {Stored: 3}},
		wantStored: 7,
		wantBatch:  []int{4, 3},
	}, {
		name:       "a batch holding an event stored before is published event by event",
		maxEvents:  500,
		stored:     []string{"b-1"},
		requests:   [][]event.Message{events("a", 2), events("b", 2)},
		want:       []publishResult{{Stored: 2}, {Stored: 1, Duplicates: 1}},
		wantStored: 3,
		wantBatch:  []int{4},
	}, {
		name:       "a repeated event keeps its request out of the batch",
		maxEvents:  500,
		requests:   [][]event.Message{events("a", 1), events("b", 1), append(events("a", 1), events("c", 1)...)},
		want:       []publishResult{{Stored: 1}, {Stored: 1}, {Stored: 1, Duplicates: 1}},
		anySplit:   true, // the lone repeat may store a-0 before the batch does
		wantStored: 3,
		wantBatch:  []int{2},
	}, {
		name:       "a stream without atomic publish still gets every event",
		adjust:     noAtomic,
		maxEvents:  500,
		requests:   [][]event.Message{events("a", 2), events("b", 1)},
		want:       []publishResult{{Stored: 2}, {Stored: 1}},
		wantStored: 3,
		wantBatch:  []int{3},
	}, {
		name:       "an event over the stream's size limit fails its request alone",
		adjust:     func(c *jetstream.StreamConfig) { c.MaxMsgSize = 2048 },
		maxEvents:  500,
		requests:   [][]event.Message{events("a", 1), {big}, events("c", 1)},
		want:       []publishResult{{Stored: 1}, {}, {Stored: 1}},
		wantErr:    []error{nil, errEventTooLarge, nil},
		wantStored: 2,
		wantBatch:  []int{3},
	}, {
		name:      "a batch nobody answers is not persisted",
		maxEvents: 500,
		requests:  [][]event.Message{events("a", 1), events("b", 2)},
		beforeCommit: func(t *testing.T, js jetstream.JetStream) {
			if err := js.DeleteStream(context.Background(), "EVENTS"); err != nil {
				t.Fatal(err)
			}
		},
		want:      []publishResult{{}, {}},
		wantErr:   []error{errNotPersisted, errNotPersisted},
		wantBatch: []int{3},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, st := heldPublisher(t, tt.maxEvents, tt.adjust)
			ctx := context.Background()
			for _, id := range tt.stored {
				if _, err := p.js.PublishMsg(ctx, event.Message{Subject: "events.demo.job.x.updated", ID: id, Data: []byte("{}")}.NATS()); err != nil {
					t.Fatal(err)
				}
			}
			answers := start(t, p, tt.requests...)
			if tt.beforeCommit != nil {
				tt.beforeCommit(t, p.js)
			}
			p.commitPending() // the held committer drains the queue
			var sum, want publishResult
			for i, a := range answers {
				got := <-a
				var wantErr error
				if tt.wantErr != nil {
					wantErr = tt.wantErr[i]
				}
				if (wantErr == nil) != (got.err == nil) || (wantErr != nil && !errors.Is(got.err, wantErr)) {
					t.Fatalf("request %d: error %v, want %v", i, got.err, wantErr)
				}
				sum.Stored += got.res.Stored
				sum.Duplicates += got.res.Duplicates
				want.Stored += tt.want[i].Stored
				want.Duplicates += tt.want[i].Duplicates
				if !tt.anySplit && got.res != tt.want[i] {
					t.Errorf("request %d: got %+v, want %+v", i, got.res, tt.want[i])
				}
			}
			if sum != want {
				t.Errorf("all requests: got %+v, want %+v", sum, want)
			}
			if tt.beforeCommit == nil {
				info, err := st.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got := info.State.Msgs - uint64(len(tt.stored)); got != tt.wantStored {
					t.Errorf("EVENTS holds %d new messages, want %d", got, tt.wantStored)
				}
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
	p, _ := heldPublisher(t, 500, nil)
	p.active = 0
	res, err := p.persist(context.Background(), nil)
	if err != nil || res != (publishResult{}) {
		t.Fatalf("got %+v, %v; want nothing stored and no error", res, err)
	}
}

// noTenants is a directory without tenants, for tests of the publisher alone.
type noTenants struct{}

func (noTenants) Lookup(string) (*tenant.Tenant, bool) { return nil, false }
func (noTenants) Rejected() []tenant.Rejection         { return nil }
