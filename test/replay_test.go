package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/streams"
	"github.com/fieldstream/fieldstream/test/harness"
)

// replayEnv is one embedded JetStream with fieldstream's streams and a hand-made event log,
// for the tests of replays and redrives that need no simulated outside world.
type replayEnv struct {
	t  *testing.T
	js jetstream.JetStream
}

func newReplayEnv(t *testing.T) *replayEnv {
	t.Helper()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	if _, err := streams.Apply(context.Background(), js, streams.Options{}); err != nil {
		t.Fatal(err)
	}
	return &replayEnv{t: t, js: js}
}

// publish stores an event of tenant about entity id at time at, and returns its sequence.
func (e *replayEnv) publish(tenant, entity string, id int64, at time.Time) uint64 {
	e.t.Helper()
	ids := strconv.FormatInt(id, 10)
	evID := "test:" + tenant + ":" + entity + ":" + ids + ":" + strconv.FormatInt(at.UnixNano(), 10)
	ce := event.New(event.SourceServiceTrade, tenant, entity, ids, "updated", evID, at, time.Now(), []byte(`{"n":1}`))
	subj, err := event.Subject(tenant, entity, ids, "updated")
	if err != nil {
		e.t.Fatal(err)
	}
	ack, err := e.js.PublishMsg(context.Background(), &nats.Msg{Subject: subj, Data: ce.AppendJSON(nil),
		Header: nats.Header{jetstream.MsgIDHeader: []string{evID}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

// stallingSink applies what the live consumer delivers, fails what fail says, and never
// answers for a re-delivery (a replay or a redrive) until released: the consumer has
// crashed or hung on it, as far as JetStream can tell.
type stallingSink struct {
	mu      sync.Mutex
	applied []string
	fail    func(m *consumer.Message) error
	release chan struct{}
	stalled chan struct{}
	once    sync.Once
}

func newStallingSink(fail func(m *consumer.Message) error) *stallingSink {
	return &stallingSink{fail: fail, release: make(chan struct{}), stalled: make(chan struct{})}
}

func (s *stallingSink) handle(ctx context.Context, m *consumer.Message) error {
	if m.Replay != nil {
		s.once.Do(func() { close(s.stalled) })
		select {
		case <-s.release:
		case <-ctx.Done():
		}
		return ctx.Err()
	}
	if s.fail != nil {
		if err := s.fail(m); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, m.Event.ID)
	return nil
}

func (s *stallingSink) appliedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.applied)
}

// runStalling runs consumer name with a short AckWait and MaxDeliver 2 over sink until the
// test ends.
func (e *replayEnv) runStalling(name string, s *stallingSink) {
	e.t.Helper()
	cfg := consumer.Config{Name: name, FilterSubjects: []string{"events.*.asset.>"}, AckWait: 300 * time.Millisecond,
		MaxDeliver: 2, NakDelay: 20 * time.Millisecond, Logger: zerolog.Nop()}
	p, err := consumer.NewPipeline(context.Background(), e.js, cfg, consumer.PerMessage(s.handle),
		consumer.PipelineOptions{Retry: consumer.RetryConfig{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, Budget: 20 * time.Millisecond}})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	e.t.Cleanup(func() {
		close(s.release)
		cancel()
		<-done
	})
}

// deadLettersOf returns the dead letters of consumer name, read by sequence (an ordered
// consumer per poll would pile up consumers faster than the server retires them).
func (e *replayEnv) deadLettersOf(name string) []consumer.StoredDeadLetter {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, streams.DeadLetters)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []consumer.StoredDeadLetter
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		if d := consumer.ReadDeadLetter(seq, m.Subject, m.Header, m.Data); d.Consumer == name && strings.HasPrefix(m.Subject, consumer.DLQPrefix+".") {
			out = append(out, d)
		}
	}
	return out
}

// TestReplayedMessageExhaustedIsDeadLettered (issue 10, defect 3): a replayed event on
// which the consumer hangs past AckWait until MaxDeliver is reached is dead-lettered from
// JetStream's MAX_DELIVERIES advisory, as an event of EVENTS is; it does not fall between
// the replay and DLQ.
func TestReplayedMessageExhaustedIsDeadLettered(t *testing.T) {
	e := newReplayEnv(t)
	s := newStallingSink(nil)
	e.runStalling("stuck", s)
	seq := e.publish("acme", "asset", 1, time.Now())
	natstest.Eventually(t, 10*time.Second, "the event applied live", func() bool { return s.appliedCount() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = ops.Replay(ctx, e.js, ops.ReplaySpec{Consumer: "stuck", FromSeq: seq, Force: true}, false, nil)
	}()
	<-s.stalled
	natstest.Eventually(t, 20*time.Second, "the exhausted replay dead-lettered", func() bool {
		for _, d := range e.deadLettersOf("stuck") {
			if d.OriginalSeq == seq && d.Class == consumer.ClassExhausted {
				return true
			}
		}
		return false
	})
}

// TestRedrivenMessageExhaustedIsDeadLettered (issue 10, defect 3): a redriven dead letter
// on which the consumer hangs until MaxDeliver is reached is dead-lettered anew, and the
// dead letter it was redriven from leaves DLQ: one dead letter, not none and not two.
func TestRedrivenMessageExhaustedIsDeadLettered(t *testing.T) {
	e := newReplayEnv(t)
	s := newStallingSink(func(*consumer.Message) error { return failure.Permanent(errors.New("422 unprocessable")) })
	e.runStalling("stuck", s)
	seq := e.publish("acme", "asset", 1, time.Now())
	natstest.Eventually(t, 10*time.Second, "the event dead-lettered", func() bool { return len(e.deadLettersOf("stuck")) == 1 })

	if _, err := ops.Redrive(context.Background(), e.js, ops.Selection{Consumer: "stuck"}, false); err != nil {
		t.Fatal(err)
	}
	<-s.stalled
	natstest.Eventually(t, 20*time.Second, "the exhausted redrive dead-lettered in place of the first", func() bool {
		letters := e.deadLettersOf("stuck")
		return len(letters) == 1 && letters[0].OriginalSeq == seq && letters[0].Class == consumer.ClassExhausted
	})
}

// TestReplaySubjectNarrowsTheConsumersFilters (issue 10, defect 6): --subject narrows the
// window to what the consumer subscribes to and never widens it; a subject outside the
// consumer's filters is refused.
func TestReplaySubjectNarrowsTheConsumersFilters(t *testing.T) {
	e := newReplayEnv(t)
	ctx := context.Background()
	if _, err := ops.AddConsumer(ctx, e.js, "orders", []string{"events.*.work_order.>"}, "new", "test"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	e.publish("acme", "work_order", 1, now)
	e.publish("acme", "work_order", 2, now)
	e.publish("acme", "asset", 3, now)
	e.publish("other", "work_order", 4, now)

	tests := []struct {
		subject      string
		wantSubjects []string
		wantErr      string
	}{
		{subject: "", wantSubjects: []string{"events.acme.work_order.1.updated", "events.acme.work_order.2.updated", "events.other.work_order.4.updated"}},
		{subject: "events.acme.>", wantSubjects: []string{"events.acme.work_order.1.updated", "events.acme.work_order.2.updated"}},
		{subject: "events.*.*.2.*", wantSubjects: []string{"events.acme.work_order.2.updated"}},
		{subject: "events.acme.work_order.1.updated", wantSubjects: []string{"events.acme.work_order.1.updated"}},
		{subject: "events.*.asset.>", wantErr: "does not overlap"},
		{subject: "events.acme.asset.3.updated", wantErr: "does not overlap"},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			plan, err := ops.Replay(ctx, e.js, ops.ReplaySpec{Consumer: "orders", FromSeq: 1, Subject: tt.subject}, true, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q; plan %+v", err, tt.wantErr, plan)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for s := range plan.BySubject {
				got = append(got, s)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.wantSubjects) || plan.Total != len(tt.wantSubjects) {
				t.Fatalf("the replay would send %d events on %v, want %v", plan.Total, got, tt.wantSubjects)
			}
		})
	}
}

// recordingSink applies every event it is handed, taking delay per event (a downstream
// system's latency), and records what it applied, in order, by whom: the live consumer or a
// re-delivery. Safe for concurrent use.
type recordingSink struct {
	mu      sync.Mutex
	delay   time.Duration
	applied []appliedEvent
	// shared, if set, makes the sink idempotent by event id across sinks, as fieldstream's
	// downstream systems are: a repeated event id is turned away, not applied.
	shared     *sync.Map
	suppressed atomic.Int64
	// block, if set, is called for each event before it is applied.
	block func(m *consumer.Message)
}

type appliedEvent struct {
	id, subject string
	seq         uint64
	time        time.Time
	replayed    bool
}

func (s *recordingSink) handle(_ context.Context, m *consumer.Message) error {
	if s.block != nil {
		s.block(m)
	}
	if s.delay > 0 {
		time.Sleep(s.delay) // the downstream system's latency
	}
	if s.shared != nil {
		if _, dup := s.shared.LoadOrStore(m.Event.ID, true); dup {
			s.suppressed.Add(1)
			return nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, appliedEvent{id: m.Event.ID, subject: m.Subject(), seq: m.EventsSequence(), time: m.Event.Time, replayed: m.Replay != nil})
	return nil
}

func (s *recordingSink) snapshot() []appliedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.applied)
}

// runPipeline runs consumer name over events.*.asset.> into sink on its own connection to
// the server until the test ends; the returned function kills it: its connection closes
// under it, as when its process dies.
func (e *replayEnv) runPipeline(name string, deliver jetstream.DeliverPolicy, s *recordingSink) (kill func()) {
	e.t.Helper()
	nc, js := natstest.ConnectURL(e.t, e.js.Conn().ConnectedUrl())
	cfg := consumer.Config{Name: name, FilterSubjects: []string{"events.*.asset.>"}, DeliverPolicy: deliver,
		AckWait: 2 * time.Second, BatchSize: 20, NakDelay: 20 * time.Millisecond, Logger: zerolog.Nop()}
	p, err := consumer.NewPipeline(context.Background(), js, cfg, consumer.PerMessage(s.handle), consumer.PipelineOptions{ReplayPoll: 50 * time.Millisecond,
		Retry: consumer.RetryConfig{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, Budget: 20 * time.Millisecond}})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	return nc.Close
}

// replays lists the replays left on EVENTS.
func (e *replayEnv) replays() []ops.ReplayStatus {
	e.t.Helper()
	st, err := ops.GetStatus(context.Background(), e.js)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Replays
}

// storedTime returns when EVENTS stored sequence seq.
func (e *replayEnv) storedTime(seq uint64) time.Time {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), streams.Events)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := s.GetMsg(context.Background(), seq)
	if err != nil {
		e.t.Fatal(err)
	}
	return m.Time
}

// TestBoundedWindowReplaysExactlyItsEvents: a replay bounded by sequences, or by times,
// re-delivers exactly the events of its window that the consumer subscribes to — each once,
// none before it, none after it, none of another consumer's subjects — and its replay
// consumer is gone once it is settled.
func TestBoundedWindowReplaysExactlyItsEvents(t *testing.T) {
	e := newReplayEnv(t)
	ctx := context.Background()
	sink := &recordingSink{}
	e.runPipeline("assets", jetstream.DeliverAllPolicy, sink)
	base := time.Now()
	var seqs []uint64
	for i := range 30 {
		seqs = append(seqs, e.publish("acme", "asset", int64(i+1), base.Add(time.Duration(i)*time.Second)))
		e.publish("acme", "work_order", int64(i+1), base) // not the consumer's
	}
	natstest.Eventually(t, 10*time.Second, "every asset event applied live", func() bool { return len(sink.snapshot()) == 30 })

	tests := []struct {
		name string
		spec ops.ReplaySpec
		want []uint64 // the sequences re-delivered
	}{
		{name: "by sequence", spec: ops.ReplaySpec{FromSeq: seqs[10], UntilSeq: seqs[19]}, want: seqs[10:20]},
		// Until is exclusive: the event stored at that time is the first after the window.
		{name: "by time", spec: ops.ReplaySpec{Since: e.storedTime(seqs[5]), Until: e.storedTime(seqs[8])}, want: seqs[5:8]},
		{name: "from a sequence to the end", spec: ops.ReplaySpec{FromSeq: seqs[27]}, want: seqs[27:]},
		{name: "a subject within the consumer's", spec: ops.ReplaySpec{FromSeq: seqs[0], UntilSeq: seqs[29], Subject: "events.acme.asset.3.>"}, want: seqs[2:3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(sink.snapshot())
			tt.spec.Consumer, tt.spec.Force = "assets", true
			res, err := ops.Replay(ctx, e.js, tt.spec, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != len(tt.want) || res.Replayed != len(tt.want) {
				t.Fatalf("replay of %d events, %d settled; want %d", res.Total, res.Replayed, len(tt.want))
			}
			var got []uint64
			for _, a := range sink.snapshot()[before:] {
				if !a.replayed {
					t.Fatalf("the live consumer applied %s during the replay", a.id)
				}
				got = append(got, a.seq)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("replayed sequences %v, want %v", got, tt.want)
			}
			natstest.Eventually(t, 5*time.Second, "the replay consumer deleted", func() bool { return len(e.replays()) == 0 })
		})
	}
}

// TestReplayAndLiveConsumerShareAnEntity: while the live consumer works through a backlog
// of many changes of a few entities, an operator replays the same window to it, unforced
// and then forced. The live consumer and the replay run side by side in one process, on the
// same entities: no event is applied twice by the unforced replay, and neither ever applies
// a change of an entity older than one applied before it.
func TestReplayAndLiveConsumerShareAnEntity(t *testing.T) {
	e := newReplayEnv(t)
	ctx := context.Background()
	base := time.Now()
	const entities, versions = 4, 40
	for v := range versions {
		for id := range entities {
			e.publish("acme", "asset", int64(id+1), base.Add(time.Duration(v)*time.Second))
		}
	}
	sink := &recordingSink{delay: time.Millisecond}
	e.runPipeline("assets", jetstream.DeliverAllPolicy, sink)
	// The replay starts while the live consumer is still early in the backlog.
	natstest.Eventually(t, 10*time.Second, "the live consumer under way", func() bool { return len(sink.snapshot()) > 0 })
	if _, err := ops.Replay(ctx, e.js, ops.ReplaySpec{Consumer: "assets", FromSeq: 1}, false, nil); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 20*time.Second, "the live consumer settled", func() bool {
		p, err := harness.Pending(ctx, e.js, "assets")
		return err == nil && p == 0
	})
	seen := map[string]bool{}
	for _, a := range sink.snapshot() {
		if seen[a.id] {
			t.Fatalf("%s applied twice (replayed: %v)", a.id, a.replayed)
		}
		seen[a.id] = true
	}
	unforced := len(sink.snapshot())
	if _, err := ops.Replay(ctx, e.js, ops.ReplaySpec{Consumer: "assets", FromSeq: 1, Force: true}, false, nil); err != nil {
		t.Fatal(err)
	}
	newest := map[string]time.Time{}
	for _, a := range sink.snapshot() {
		entity := a.subject[:strings.LastIndexByte(a.subject, '.')]
		if a.time.Before(newest[entity]) {
			t.Fatalf("%s: a change of %s applied after one of %s", entity, a.time.Format(time.RFC3339), newest[entity].Format(time.RFC3339))
		}
		newest[entity] = a.time
	}
	for entity, at := range newest {
		if want := base.Add((versions - 1) * time.Second); !at.Equal(want) {
			t.Errorf("%s ends at its change of %s, want the newest, %s", entity, at.Format(time.RFC3339), want.Format(time.RFC3339))
		}
	}
	t.Logf("applied %d of %d events before the forced replay (the rest were superseded by newer changes), %d after it",
		unforced, entities*versions, len(sink.snapshot())-unforced)
}

// TestConsumerKilledMidReplayResumesIt: the process running a replay dies in the middle of
// it; the replay stays on EVENTS, and the consumer's next process finds it and finishes
// it: every event of the window applied, none lost, and none applied twice except what the
// dead process applied without recording, which the downstream system turns away.
func TestConsumerKilledMidReplayResumesIt(t *testing.T) {
	e := newReplayEnv(t)
	ctx := context.Background()
	base := time.Now()
	for i := range 100 {
		e.publish("acme", "asset", int64(i+1), base)
	}
	shared := &sync.Map{} // the downstream system both processes write to
	dying := &recordingSink{shared: shared}
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	dying.block = func(m *consumer.Message) {
		if m.Replay != nil && m.EventsSequence() == 50 {
			once.Do(func() { close(started) })
			<-release // dies here, mid-replay; the test releases it once over
		}
	}
	// A consumer that starts at the end of the stream: the window is new to it.
	kill := e.runPipeline("assets", jetstream.DeliverNewPolicy, dying)
	t.Cleanup(func() { close(release) })
	res, err := ops.StartReplay(ctx, e.js, ops.ReplaySpec{Consumer: "assets", FromSeq: 1})
	if err != nil || res.Total != 100 {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	<-started
	kill()

	survivor := &recordingSink{shared: shared}
	e.runPipeline("assets", jetstream.DeliverNewPolicy, survivor)
	done, err := ops.FollowReplay(ctx, e.js, res.Replay, nil)
	if err != nil || done.Replayed != 100 {
		t.Fatalf("replay after the kill: %+v, %v", done, err)
	}
	applied := map[string]int{}
	for _, a := range append(dying.snapshot(), survivor.snapshot()...) {
		applied[a.id]++
	}
	if len(applied) != 100 {
		t.Fatalf("%d of 100 events applied", len(applied))
	}
	for id, n := range applied {
		if n != 1 {
			t.Fatalf("%s applied %d times", id, n)
		}
	}
	if s := survivor.suppressed.Load(); s > 40 {
		t.Fatalf("%d repeats reached the downstream system; the dying process held two batches of 20", s)
	}
	natstest.Eventually(t, 5*time.Second, "the replay consumer deleted", func() bool { return len(e.replays()) == 0 })
	t.Logf("the killed process applied %d, the next %d; %d repeats turned away by the downstream system",
		len(dying.snapshot()), len(survivor.snapshot()), survivor.suppressed.Load())
}

// TestInterruptedReplayPausesAndResumes: the operator interrupts `fsctl replay` (Ctrl-C):
// the replay is paused where it is — the service stops pulling it — and resumed later it
// finishes the window, each event applied once.
func TestInterruptedReplayPausesAndResumes(t *testing.T) {
	e := newReplayEnv(t)
	base := time.Now()
	for i := range 300 {
		e.publish("acme", "asset", int64(i+1), base)
	}
	sink := &recordingSink{}
	interrupt, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	sink.block = func(m *consumer.Message) {
		if m.Replay != nil && m.EventsSequence() == 30 {
			once.Do(func() { close(interrupt) })
			<-release // the operator presses Ctrl-C while this event is being applied
		}
	}
	e.runPipeline("assets", jetstream.DeliverNewPolicy, sink)
	ctx, ctrlC := context.WithCancel(context.Background())
	go func() { <-interrupt; ctrlC() }()
	res, err := ops.Replay(ctx, e.js, ops.ReplaySpec{Consumer: "assets", FromSeq: 1}, false, nil)
	close(release)
	if err != nil || !res.Paused || res.Replay == "" {
		t.Fatalf("interrupted replay: %+v, %v; want it paused", res, err)
	}
	// Once the service has stopped pulling it, what it applied and what remains add up;
	// what it had pulled and not started was handed back.
	natstest.Eventually(t, 5*time.Second, "the replay paused, what remains and what was applied adding up", func() bool {
		rs := e.replays()
		return len(rs) == 1 && rs[0].Paused && rs[0].Remaining == uint64(300-len(sink.snapshot()))
	})
	if paused := len(sink.snapshot()); paused == 0 || paused == 300 {
		t.Fatalf("%d of 300 events applied when paused", paused)
	}

	if err := ops.ResumeReplay(context.Background(), e.js, res.Replay); err != nil {
		t.Fatal(err)
	}
	done, err := ops.FollowReplay(context.Background(), e.js, res.Replay, nil)
	if err != nil || done.Replayed != 300 || done.Paused {
		t.Fatalf("resumed replay: %+v, %v", done, err)
	}
	applied := map[string]int{}
	for _, a := range sink.snapshot() {
		applied[a.id]++
	}
	if len(applied) != 300 || len(sink.snapshot()) != 300 {
		t.Fatalf("%d events applied %d times in all, want 300 once each", len(applied), len(sink.snapshot()))
	}
}

// TestAbandonedReplayGoesAway: a replay left paused — the operator went away — is deleted
// by the server once nobody has pulled it for its abandon threshold.
func TestAbandonedReplayGoesAway(t *testing.T) {
	e := newReplayEnv(t)
	ctx := context.Background()
	e.publish("acme", "asset", 1, time.Now())
	e.runPipeline("assets", jetstream.DeliverNewPolicy, &recordingSink{})
	res, err := ops.StartReplay(ctx, e.js, ops.ReplaySpec{Consumer: "assets", FromSeq: 1, Paused: true, AbandonAfter: time.Second})
	if err != nil || res.Replay == "" {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	if rs := e.replays(); len(rs) != 1 || !rs[0].Paused {
		t.Fatalf("replays %+v, want one, paused", rs)
	}
	natstest.Eventually(t, 15*time.Second, "the abandoned replay deleted", func() bool { return len(e.replays()) == 0 })
}

// TestSetupMigratesAReplayInProgress: a deployment upgraded in the middle of a replay and a
// redrive of the earlier design — copies in a REPLAY stream, not yet consumed — runs `fsctl
// setup`; the replay goes on as a replay consumer on EVENTS over the same window, the
// redrive through DLQ, REPLAY is deleted, and the upgraded service applies both.
func TestSetupMigratesAReplayInProgress(t *testing.T) {
	e := newReplayEnv(t)
	ctx := context.Background()
	base := time.Now()
	for i := range 10 {
		e.publish("acme", "asset", int64(i+1), base)
	}
	if _, err := ops.AddConsumer(ctx, e.js, "assets", []string{"events.*.asset.>"}, "new", "test"); err != nil {
		t.Fatal(err)
	}
	// The earlier design's REPLAY stream, its durable for assets, and its copies: a forced
	// replay of sequences 3..7 (3 and 4 already consumed), and a redrive of a dead letter.
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "REPLAY", Subjects: []string{"replay.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	c, err := e.js.CreateConsumer(ctx, "REPLAY", jetstream.ConsumerConfig{Durable: "assets", FilterSubject: "replay.assets.>", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	events, _ := e.js.Stream(ctx, streams.Events)
	for seq := uint64(3); seq <= 7; seq++ {
		m, err := events.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		h := consumer.CarriedHeader(m.Header)
		h.Set("Fs-Replay-Subject", m.Subject)
		h.Set("Fs-Replay-Sequence", strconv.FormatUint(seq, 10))
		h.Set("Fs-Replay-Force", "true")
		h.Set("Fs-Event-Id", m.Header.Get(jetstream.MsgIDHeader))
		h.Set(jetstream.MsgIDHeader, "replay:assets:"+strconv.FormatUint(seq, 10)+":run1")
		if _, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: "replay.assets." + m.Subject, Header: h, Data: m.Data}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := c.Fetch(2, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		_ = m.Ack() // consumed before the upgrade
	}
	dead, err := events.GetMsg(ctx, 9)
	if err != nil {
		t.Fatal(err)
	}
	dl := consumer.NewDeadLetters(e.js, "assets", 10, nil, zerolog.Nop())
	if err := dl.Publish(ctx, consumer.Original{Subject: dead.Subject, Header: dead.Header, Data: dead.Data, Stream: streams.Events,
		Sequence: 9, Attempts: 1, EventID: dead.Header.Get(jetstream.MsgIDHeader)}, consumer.ClassPermanent, errors.New("422"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	letters := e.deadLettersOf("assets")
	h := nats.Header{"Fs-Replay-Subject": {dead.Subject}, "Fs-Replay-Sequence": {"9"}, consumer.HeaderRedriveOf: {strconv.FormatUint(letters[0].Sequence, 10)},
		jetstream.MsgIDHeader: {"redrive:" + strconv.FormatUint(letters[0].Sequence, 10)}}
	if _, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: "replay.assets." + dead.Subject, Header: h, Data: dead.Data}); err != nil {
		t.Fatal(err)
	}

	done, err := ops.Setup(ctx, e.js, 0)
	if err != nil {
		t.Fatalf("setup: %v (did %v)", err, done)
	}
	t.Logf("setup: %v", done)
	if _, err := e.js.Stream(ctx, "REPLAY"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("REPLAY still there: %v", err)
	}
	rs := e.replays()
	if len(rs) != 1 || rs[0].Target != "assets" || rs[0].FromSeq != 5 || rs[0].UntilSeq != 7 || !rs[0].Force {
		t.Fatalf("replays after the migration: %+v, want one to assets of 5..7, forced", rs)
	}

	sink := &recordingSink{}
	e.runPipeline("assets", jetstream.DeliverNewPolicy, sink)
	natstest.Eventually(t, 10*time.Second, "the replay and the redrive applied", func() bool {
		return len(e.replays()) == 0 && len(e.deadLettersOf("assets")) == 0 && len(sink.snapshot()) == 4
	})
	var got []uint64
	for _, a := range sink.snapshot() {
		got = append(got, a.seq)
	}
	slices.Sort(got)
	if !slices.Equal(got, []uint64{5, 6, 7, 9}) {
		t.Fatalf("applied sequences %v, want 5, 6, 7 (the replay's rest) and 9 (the redrive)", got)
	}
}

// TestFsctlReplayCtrlCPausesAndResumes runs the real fsctl: `fsctl replay` follows the
// replay with a progress bar; Ctrl-C pauses it and says how to resume it, exit status 1;
// `fsctl replay --resume NAME` finishes it.
func TestFsctlReplayCtrlCPausesAndResumes(t *testing.T) {
	e := newReplayEnv(t)
	bin := buildFsctl(t)
	base := time.Now()
	for i := range 200 {
		e.publish("acme", "asset", int64(i+1), base)
	}
	sink := &recordingSink{}
	stalled, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	sink.block = func(m *consumer.Message) {
		if m.Replay != nil && m.EventsSequence() == 100 {
			once.Do(func() { close(stalled) })
			<-release
		}
	}
	e.runPipeline("assets", jetstream.DeliverNewPolicy, sink)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	server := e.js.Conn().ConnectedUrl()

	cmd := exec.Command(bin, "--server", server, "replay", "--consumer", "assets", "--from-seq", "1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	<-stalled
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	close(release)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("fsctl replay interrupted: %v, want exit status 1\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "fsctl replay --resume assets-replay-1") || !strings.Contains(stderr.String(), "paused after") {
		t.Fatalf("interrupted, fsctl said:\n%s", stderr.String())
	}
	if rs := e.replays(); len(rs) != 1 || !rs[0].Paused {
		t.Fatalf("replays %+v, want one, paused", rs)
	}

	out, err := exec.Command(bin, "--server", server, "--json", "replay", "--resume", "assets-replay-1").Output()
	if err != nil {
		t.Fatalf("fsctl replay --resume: %v: %s", err, out)
	}
	var res ops.ReplayResult
	if err := json.Unmarshal(out, &res); err != nil || res.Total != 200 || res.Replayed != 200 || res.Paused {
		t.Fatalf("fsctl replay --resume printed %s (%v)", out, err)
	}
	applied := map[string]bool{}
	for _, a := range sink.snapshot() {
		if applied[a.id] {
			t.Fatalf("%s applied twice", a.id)
		}
		applied[a.id] = true
	}
	if len(applied) != 200 {
		t.Fatalf("%d of 200 events applied", len(applied))
	}
}

// TestFsctlReplaySaysWhenNobodyRunsIt: a replay to a consumer whose service is down waits;
// `fsctl replay` says nobody pulls it, and Ctrl-C leaves it paused.
func TestFsctlReplaySaysWhenNobodyRunsIt(t *testing.T) {
	e := newReplayEnv(t)
	bin := buildFsctl(t)
	e.publish("acme", "asset", 1, time.Now())
	if _, err := ops.AddConsumer(context.Background(), e.js, "assets", []string{"events.*.asset.>"}, "new", "its service is down"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--server", e.js.Conn().ConnectedUrl(), "replay", "--consumer", "assets", "--from-seq", "1")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 20*time.Second, "fsctl says nobody pulls the replay", func() bool {
		return strings.Contains(stderr.String(), "no replica of the consumer has pulled this replay")
	})
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("interrupted, fsctl exited 0:\n%s", stderr.String())
	}
	if rs := e.replays(); len(rs) != 1 || !rs[0].Paused || rs[0].Remaining != 1 {
		t.Fatalf("replays %+v, want one, paused, its event remaining", rs)
	}
}
