package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/streams"
)

type harness struct {
	t  *testing.T
	nc *nats.Conn
	js jetstream.JetStream
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	nc, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := context.Background()
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "EVENTS", Subjects: []string{"events.>"}, Storage: jetstream.FileStorage, Duplicates: time.Minute},
		{Name: "DLQ", Subjects: []string{"dlq.>", "redrive.>"}, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute},
	} {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	return &harness{t: t, nc: nc, js: js}
}

// publish stores an event about asset id at time at; msgID "" derives it from the event.
func (h *harness) publish(eventID string, id int64, action string, at time.Time, msgID string) {
	h.t.Helper()
	h.store(assetEvent(eventID, id, action, at, msgID))
}

// sink records applications by event id and fails as told.
type sink struct {
	mu      sync.Mutex
	applied map[string]int
	// shared, if set, makes the sink idempotent by event id across sinks, as fieldstream's
	// downstream systems are: a repeated event id is suppressed, not applied.
	shared     *sync.Map
	suppressed int
	order      []string
	fail       func(m *consumer.Message, attempt int) error
	tries      map[string]int
}

func newSink(fail func(m *consumer.Message, attempt int) error) *sink {
	return &sink{applied: map[string]int{}, tries: map[string]int{}, fail: fail}
}

func (s *sink) handle(_ context.Context, m *consumer.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries[m.Event.ID]++
	if s.fail != nil {
		if err := s.fail(m, s.tries[m.Event.ID]); err != nil {
			return err
		}
	}
	if s.shared != nil {
		if _, dup := s.shared.LoadOrStore(m.Event.ID, true); dup {
			s.suppressed++
			return nil
		}
	}
	s.applied[m.Event.ID]++
	s.order = append(s.order, m.Event.ID)
	return nil
}

func (s *sink) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied[id]
}

func (s *sink) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.applied {
		n += c
	}
	return n
}

// run starts a pipeline named name over s and stops it at cleanup.
func (h *harness) run(name string, s *sink, cfg consumer.Config) *consumer.Pipeline {
	h.t.Helper()
	cfg.Name = name
	if cfg.FilterSubjects == nil {
		cfg.FilterSubjects = []string{"events.*.asset.>"}
	}
	if cfg.NakDelay == 0 {
		cfg.NakDelay = 20 * time.Millisecond
	}
	p, err := consumer.NewPipeline(context.Background(), h.js, cfg, consumer.PerMessage(s.handle),
		consumer.PipelineOptions{Retry: consumer.RetryConfig{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, Budget: 50 * time.Millisecond}})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("Run: %v", err)
		}
	})
	return p
}

func (h *harness) dlq() []*jetstream.RawStreamMsg {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), "DLQ")
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err == nil {
			out = append(out, m)
		}
	}
	return out
}

func (h *harness) pending(name string) (pending uint64, ackPending int) {
	h.t.Helper()
	c, err := h.js.Consumer(context.Background(), "EVENTS", name)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.NumPending, info.NumAckPending
}

func (h *harness) settled(name string) func() bool {
	return func() bool { p, a := h.pending(name); return p == 0 && a == 0 }
}

var t0 = time.Unix(1767106195, 0)

func TestTransientFailuresEndAppliedOnce(t *testing.T) {
	h := newHarness(t)
	// Each event fails transiently on its first four tries: in-process retries use some,
	// JetStream redeliveries (NakWithDelay) the rest.
	s := newSink(func(_ *consumer.Message, attempt int) error {
		if attempt <= 4 {
			return failure.Transient(errors.New("503 from sink"), 0)
		}
		return nil
	})
	h.run("c", s, consumer.Config{})
	for i := range 20 {
		h.publish(fmt.Sprintf("e%d", i), int64(i+1), "updated", t0, "")
	}
	natstest.Eventually(t, 10*time.Second, "all 20 applied", func() bool { return s.total() == 20 })
	natstest.Eventually(t, 5*time.Second, "all acknowledged", h.settled("c"))
	for i := range 20 {
		if n := s.count(fmt.Sprintf("e%d", i)); n != 1 {
			t.Fatalf("e%d applied %d times", i, n)
		}
	}
	if n := len(h.dlq()); n != 0 {
		t.Fatalf("%d dead letters, want none", n)
	}
}

func TestPermanentFailureIsDeadLetteredAtOnce(t *testing.T) {
	h := newHarness(t)
	s := newSink(func(m *consumer.Message, _ int) error {
		if m.Event.EntityID == "404" {
			return failure.Permanent(errors.New("GET /asset/404: HTTP 404"))
		}
		return nil
	})
	h.run("assets", s, consumer.Config{})
	h.publish("bad", 404, "updated", t0, "")
	h.publish("good", 1, "updated", t0, "")
	natstest.Eventually(t, 5*time.Second, "dead letter stored", func() bool { return len(h.dlq()) == 1 })
	natstest.Eventually(t, 5*time.Second, "all settled", h.settled("assets"))
	d := h.dlq()[0]
	want := map[string]string{
		consumer.HeaderDLQSubject:  "events.t.asset.404.updated",
		consumer.HeaderDLQStream:   "EVENTS",
		consumer.HeaderDLQSequence: "1",
		consumer.HeaderDLQConsumer: "assets",
		consumer.HeaderDLQClass:    consumer.ClassPermanent,
		consumer.HeaderDLQAttempts: "1",
	}
	for k, v := range want {
		if got := d.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if d.Subject != "dlq.assets.t.asset.404.updated" {
		t.Errorf("dead letter subject %q", d.Subject)
	}
	if d.Header.Get(consumer.HeaderDLQError) != "GET /asset/404: HTTP 404" || d.Header.Get(consumer.HeaderDLQFirstFailure) == "" || d.Header.Get(consumer.HeaderDLQLastFailure) == "" {
		t.Errorf("provenance headers %v", d.Header)
	}
	if string(d.Data) == "" || d.Header.Get("Nats-Msg-Id") == "bad" {
		t.Errorf("dead letter lost the payload or kept the original message id")
	}
	if s.tries["bad"] != 1 {
		t.Errorf("permanent failure tried %d times, want 1", s.tries["bad"])
	}
	if s.count("good") != 1 {
		t.Errorf("neighbour applied %d times", s.count("good"))
	}
}

func TestExhaustedRetriesAreDeadLettered(t *testing.T) {
	h := newHarness(t)
	s := newSink(func(*consumer.Message, int) error { return failure.Transient(errors.New("timeout"), 0) })
	h.run("c", s, consumer.Config{MaxDeliver: 3})
	h.publish("e", 1, "updated", t0, "")
	natstest.Eventually(t, 10*time.Second, "dead letter stored", func() bool { return len(h.dlq()) == 1 })
	natstest.Eventually(t, 5*time.Second, "settled", h.settled("c"))
	d := h.dlq()[0]
	if d.Header.Get(consumer.HeaderDLQClass) != consumer.ClassExhausted || d.Header.Get(consumer.HeaderDLQAttempts) != "3" {
		t.Fatalf("class %q attempts %q, want exhausted after 3", d.Header.Get(consumer.HeaderDLQClass), d.Header.Get(consumer.HeaderDLQAttempts))
	}
	first, _ := time.Parse(time.RFC3339Nano, d.Header.Get(consumer.HeaderDLQFirstFailure))
	last, _ := time.Parse(time.RFC3339Nano, d.Header.Get(consumer.HeaderDLQLastFailure))
	if !first.Before(last) {
		t.Fatalf("first failure %v not before last %v", first, last)
	}
}

func TestRepublishedAndStaleEventsAreNotApplied(t *testing.T) {
	h := newHarness(t)
	s := newSink(nil)
	h.run("c", s, consumer.Config{})
	h.publish("v2", 7, "updated", t0.Add(time.Minute), "")
	natstest.Eventually(t, 5*time.Second, "v2 applied", func() bool { return s.count("v2") == 1 })
	// The same event again under another message id (a replay, a re-publication), and an
	// older change of the same entity arriving late.
	h.publish("v2", 7, "updated", t0.Add(time.Minute), "republished")
	h.publish("v1", 7, "updated", t0, "")
	h.publish("v3", 7, "updated", t0.Add(2*time.Minute), "")
	natstest.Eventually(t, 5*time.Second, "v3 applied", func() bool { return s.count("v3") == 1 })
	natstest.Eventually(t, 5*time.Second, "settled", h.settled("c"))
	if s.count("v2") != 1 || s.count("v1") != 0 {
		t.Fatalf("v2 applied %d times (want 1), stale v1 %d times (want 0)", s.count("v2"), s.count("v1"))
	}
	if n := len(h.dlq()); n != 0 {
		t.Fatalf("%d dead letters: a re-publication or a stale change is skipped, not dead-lettered", n)
	}
}

func TestOrderHoldsUnderRedelivery(t *testing.T) {
	h := newHarness(t)
	// The first change fails once; by the time it is redelivered the second is applied,
	// so the first must not overwrite it.
	s := newSink(func(m *consumer.Message, attempt int) error {
		if m.Event.ID == "first" && attempt == 1 {
			return failure.Transient(errors.New("blip"), 100*time.Millisecond) // longer than the retry budget
		}
		return nil
	})
	h.run("c", s, consumer.Config{NakDelay: 200 * time.Millisecond})
	h.publish("first", 9, "updated", t0, "")
	h.publish("second", 9, "updated", t0.Add(time.Second), "")
	natstest.Eventually(t, 5*time.Second, "second applied", func() bool { return s.count("second") == 1 })
	natstest.Eventually(t, 5*time.Second, "first settled", h.settled("c"))
	if s.count("first") != 0 {
		t.Fatalf("older change applied after the newer one: order %v", s.order)
	}
}

func TestConsumerKilledMidBatchLosesNothing(t *testing.T) {
	h := newHarness(t)
	// A first replica takes a batch and dies before finishing it: its connection closes
	// with messages delivered and unacknowledged.
	nc2, err := nats.Connect(h.nc.ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	js2, _ := jetstream.New(nc2)
	for i := range 50 {
		h.publish(fmt.Sprintf("e%d", i), int64(i+1), "updated", t0, "")
	}
	started := make(chan struct{})
	block := make(chan struct{})
	var once sync.Once
	shared := &sync.Map{} // the downstream system both replicas write to
	dying := newSink(nil)
	dying.shared = shared
	cfg := consumer.Config{Name: "c", FilterSubjects: []string{"events.*.asset.>"}, AckWait: time.Second, BatchSize: 10}
	p1, err := consumer.NewPipeline(context.Background(), js2, cfg, consumer.PerMessage(func(ctx context.Context, m *consumer.Message) error {
		if m.Event.ID == "e5" {
			once.Do(func() { close(started) })
			<-block // dies here, mid-batch
		}
		return dying.handle(ctx, m)
	}), consumer.PipelineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go p1.Run(context.Background())
	<-started
	nc2.Close() // the process is gone: no acks, no naks
	defer close(block)

	s := newSink(nil)
	s.shared = shared
	h.run("c", s, consumer.Config{AckWait: time.Second, BatchSize: 10})
	natstest.Eventually(t, 15*time.Second, "every event applied", func() bool {
		return dying.total()+s.total() >= 50
	})
	natstest.Eventually(t, 10*time.Second, "settled", h.settled("c"))
	for i := range 50 {
		id := fmt.Sprintf("e%d", i)
		if n := dying.count(id) + s.count(id); n != 1 {
			t.Fatalf("%s applied %d times", id, n)
		}
	}
	// Only what the dying replica applied but could not record reached the downstream
	// system twice, and the system's event-id check turned it away; everything else the
	// ledger kept from the handler.
	if s.suppressed > dying.total() || s.suppressed > 2*cfg.BatchSize { // two batches in flight
		t.Fatalf("%d repeated deliveries reached the sink; the dying replica applied %d", s.suppressed, dying.total())
	}
	t.Logf("dying replica applied %d, survivor %d, repeats turned away by the sink %d", dying.total(), s.total(), s.suppressed)
}

func TestMaxDeliveriesAdvisoryDeadLetters(t *testing.T) {
	tests := []struct {
		name string
		// kept: an ADVISORIES stream keeps the advisory, and the watcher starts only after
		// it was emitted, as when every replica was down at that moment.
		kept bool
	}{
		{name: "watcher subscribed", kept: false},
		{name: "advisory kept while no watcher ran", kept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			dl := consumer.NewDeadLetters(h.js, "stuck", 2, nil, zerologNop())
			if tt.kept {
				if _, err := h.js.CreateStream(ctx, jetstream.StreamConfig{Name: streams.Advisories,
					Subjects: []string{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"}}); err != nil {
					t.Fatal(err)
				}
			} else {
				stop, err := dl.WatchMaxDeliveries(ctx, h.js, "EVENTS")
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
			}
			c, err := h.js.CreateOrUpdateConsumer(ctx, "EVENTS", jetstream.ConsumerConfig{
				Durable: "stuck", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 100 * time.Millisecond, MaxDeliver: 2,
			})
			if err != nil {
				t.Fatal(err)
			}
			h.publish("e", 1, "updated", t0, "")
			// A consumer that takes the message and never answers, twice; the third pull
			// makes the server notice that MaxDeliver is reached.
			for range 3 {
				b, err := c.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				for range b.Messages() {
				}
			}
			if tt.kept {
				natstest.Eventually(t, 5*time.Second, "advisory kept", func() bool {
					s, _ := h.js.Stream(ctx, streams.Advisories)
					info, err := s.Info(ctx)
					return err == nil && info.State.Msgs == 1
				})
				stop, err := dl.WatchMaxDeliveries(ctx, h.js, "EVENTS")
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
			}
			natstest.Eventually(t, 5*time.Second, "advisory dead-lettered the message", func() bool { return len(h.dlq()) == 1 })
			d := h.dlq()[0]
			if d.Header.Get(consumer.HeaderDLQClass) != consumer.ClassExhausted || d.Header.Get(consumer.HeaderDLQSequence) != "1" || d.Subject != "dlq.stuck.t.asset.1.updated" {
				t.Fatalf("dead letter %s %v", d.Subject, d.Header)
			}
		})
	}
}

func TestPolledEventsApplyOnlyWhenNewer(t *testing.T) {
	h := newHarness(t)
	s := newSink(nil)
	h.run("c", s, consumer.Config{})
	poll := func(eventID string, at time.Time) {
		ce := event.New("servicetrade-poll", "t", "asset", "5", "updated", eventID, at, time.Now(), []byte(`{}`))
		msg := &nats.Msg{Subject: "events.t.asset.5.updated", Data: ce.AppendJSON(nil),
			Header: nats.Header{jetstream.MsgIDHeader: []string{eventID}, event.HeaderOrigin: []string{event.OriginPoll}}}
		if _, err := h.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	h.publish("webhook", 5, "updated", t0, "")
	natstest.Eventually(t, 5*time.Second, "webhook applied", func() bool { return s.count("webhook") == 1 })
	poll("poll-same", t0)                   // the poller restating the change the webhook carried
	poll("poll-newer", t0.Add(time.Minute)) // a change whose webhook was lost
	natstest.Eventually(t, 5*time.Second, "newer poll applied", func() bool { return s.count("poll-newer") == 1 })
	natstest.Eventually(t, 5*time.Second, "settled", h.settled("c"))
	if s.count("poll-same") != 0 {
		t.Fatal("a polled event restating an applied webhook was applied again")
	}
}

// TestRecreatedStreamForgetsSequences: a consumer skips events whose EVENTS sequence it
// applied — but when EVENTS is deleted and created again its sequences start over, and the
// new events at the old sequences must be applied.
func TestRecreatedStreamForgetsSequences(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	s1 := newSink(nil)
	run := func(s *sink) func() {
		p, err := consumer.NewPipeline(ctx, h.js, consumer.Config{Name: "c", FilterSubjects: []string{"events.*.asset.>"}},
			consumer.PerMessage(s.handle), consumer.PipelineOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = p.Run(rctx) }()
		return func() { cancel(); <-done }
	}
	for i := range 3 {
		h.publish(fmt.Sprintf("old%d", i), int64(i+1), "updated", t0, "")
	}
	stop := run(s1)
	natstest.Eventually(t, 5*time.Second, "old events applied", func() bool { return s1.total() == 3 })
	stop()

	// Restarted from the beginning: the ledger knows those sequences and skips them.
	if err := h.js.DeleteConsumer(ctx, "EVENTS", "c"); err != nil {
		t.Fatal(err)
	}
	s2 := newSink(nil)
	stop = run(s2)
	natstest.Eventually(t, 5*time.Second, "restart settled", h.settled("c"))
	stop()
	if s2.total() != 0 {
		t.Fatalf("a restart from the beginning applied %d events again", s2.total())
	}

	cfg := jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Storage: jetstream.FileStorage, Duplicates: time.Minute}
	if err := h.js.DeleteStream(ctx, "EVENTS"); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "clock moved on", func() bool { return time.Now().After(t0) }) // distinct creation times
	if _, err := h.js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		h.publish(fmt.Sprintf("new%d", i), int64(i+10), "updated", t0.Add(time.Hour), "")
	}
	s3 := newSink(nil)
	stop = run(s3)
	defer stop()
	natstest.Eventually(t, 5*time.Second, "new events at reused sequences applied", func() bool { return s3.total() == 3 })
}

// TestSettleByOutcome: the consumer settles a message by the error its handler returns,
// and a re-delivered dead letter, once settled, is removed from DLQ. The handler of a plain
// Consumer gets the message undecoded, its id read from the headers.
func TestSettleByOutcome(t *testing.T) {
	tests := []struct {
		name      string
		errs      []error // the handler's, delivery by delivery
		wantCalls int32
	}{
		{name: "applied", errs: []error{nil}, wantCalls: 1},
		{name: "already applied", errs: []error{fmt.Errorf("seq 1: %w", consumer.ErrAlreadyApplied)}, wantCalls: 1},
		{name: "superseded", errs: []error{consumer.ErrSuperseded}, wantCalls: 1},
		{name: "dead-lettered", errs: []error{fmt.Errorf("%w (permanent): 422", consumer.ErrDeadLettered)}, wantCalls: 1},
		{name: "transient, then applied", errs: []error{errUnavailable, nil}, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			original := assetEvent("e1", 1, "updated", t0, "")
			seq := h.store(original)
			dl := consumer.NewDeadLetters(h.js, "c", 10, nil, zerologNop())
			if err := dl.Publish(ctx, consumer.Original{Subject: original.Subject, Header: original.Header, Data: original.Data,
				Stream: "EVENTS", Sequence: seq, Attempts: 1, EventID: "e1"}, consumer.ClassPermanent, errRejected, time.Time{}); err != nil {
				t.Fatal(err)
			}
			letter := h.dlq()[0]
			redrive, err := consumer.ReadDeadLetter(letter.Sequence, letter.Subject, letter.Header, letter.Data).RedriveMsg()
			if err != nil {
				t.Fatal(err)
			}
			h.store(redrive)

			var calls atomic.Int32
			var seen atomic.Value
			c, err := consumer.NewRedrive(ctx, h.js, consumer.Config{Name: "c", FilterSubjects: []string{"events.>"}, NakDelay: 10 * time.Millisecond},
				func(_ context.Context, batch []*consumer.Message) []error {
					n := int(calls.Add(1))
					seen.Store([2]string{batch[0].ID(), batch[0].Event.ID})
					if batch[0].Subject() != original.Subject || batch[0].EventsSequence() != seq {
						t.Errorf("redriven event %s at %d, want %s at %d", batch[0].Subject(), batch[0].EventsSequence(), original.Subject, seq)
					}
					return []error{tt.errs[min(n, len(tt.errs))-1]}
				})
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- c.Run(rctx) }()
			defer func() { cancel(); <-done }()

			natstest.Eventually(t, 5*time.Second, "settled, the dead letter and its redrive removed", func() bool {
				cons, err := h.js.Consumer(ctx, "DLQ", consumer.RedriveName("c"))
				if err != nil {
					return false
				}
				info, err := cons.Info(ctx)
				return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && len(h.dlq()) == 0
			})
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("handled %d times, want %d", n, tt.wantCalls)
			}
			if got := seen.Load().([2]string); got != [2]string{"e1", ""} {
				t.Errorf("the handler saw id %q and event id %q, want e1 from the headers, undecoded", got[0], got[1])
			}
		})
	}
}
