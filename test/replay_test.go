package test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
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
