package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/streams"
)

// DefaultAbandonAfter is how long a replay nobody pulls (paused, or its service down) is
// kept before the server deletes it.
const DefaultAbandonAfter = 24 * time.Hour

// ReplaySpec is a window of EVENTS to re-deliver to one consumer.
type ReplaySpec struct {
	Consumer string
	// The window starts at FromSeq, or at the first event at or after Since.
	FromSeq uint64
	Since   time.Time
	// It ends at UntilSeq or at the last event before Until; by default at the last event
	// stored when the replay starts, so a replay always ends.
	UntilSeq uint64
	Until    time.Time
	// Subject narrows the window to the events of the consumer's filters it matches; a
	// subject outside them is refused.
	Subject string
	// Rate bounds the events per second each replica of the consumer applies (0: no bound).
	Rate float64
	// Force applies events the consumer's ledger says it already applied.
	Force bool
	// AbandonAfter is how long a replay nobody pulls is kept (DefaultAbandonAfter if 0).
	AbandonAfter time.Duration
	// Paused creates the replay paused (StartReplay): nothing is re-delivered until
	// ResumeReplay.
	Paused bool
}

// ReplayResult is what a replay did, or would do (dry run).
type ReplayResult struct {
	// Replay is the replay consumer on EVENTS (empty for a dry run).
	Replay   string   `json:"replay,omitempty"`
	ID       string   `json:"id,omitempty"`
	Consumer string   `json:"consumer"`
	Filters  []string `json:"filters"`
	FromSeq  uint64   `json:"from_seq"`
	UntilSeq uint64   `json:"until_seq"`
	// Total is the events in the window; BySubject counts them per subject (dry run only).
	Total     int            `json:"total"`
	BySubject map[string]int `json:"by_subject,omitempty"`
	// Replayed is the events of the window the consumer has settled: applied, skipped as
	// applied before, or dead-lettered.
	Replayed int `json:"replayed"`
	// Paused: created paused, or interrupted; the replay waits to be resumed (or abandoned).
	Paused bool `json:"paused,omitempty"`
	DryRun bool `json:"dry_run,omitempty"`
	Force  bool `json:"force,omitempty"`
}

// Replay re-delivers the window of spec to spec.Consumer only, reading EVENTS in place: it
// creates a replay consumer on EVENTS (see consumer.ReplayWindow) that the consumer's
// service runs through its pipeline, and follows it until the window is settled, calling
// progress as it goes. Events the consumer already applied are skipped by its ledger
// unless spec.Force. With dryRun it only counts the window, per subject. If ctx ends first
// the replay is paused, to be resumed with ResumeReplay (see FollowReplay).
func Replay(ctx context.Context, js jetstream.JetStream, spec ReplaySpec, dryRun bool, progress func(ReplayProgress)) (ReplayResult, error) {
	plan, err := planReplay(ctx, js, spec)
	if err != nil || plan.res.Total == 0 {
		return plan.res, err
	}
	if dryRun {
		plan.res.DryRun = true
		return plan.res, plan.countSubjects(ctx)
	}
	res, err := plan.start(ctx, js)
	if err != nil {
		return res, err
	}
	return FollowReplay(ctx, js, res.Replay, progress)
}

// StartReplay creates the replay of spec and returns without waiting for it (Replay
// without following). A window with no events creates nothing (Total 0).
func StartReplay(ctx context.Context, js jetstream.JetStream, spec ReplaySpec) (ReplayResult, error) {
	plan, err := planReplay(ctx, js, spec)
	if err != nil || plan.res.Total == 0 {
		return plan.res, err
	}
	return plan.start(ctx, js)
}

type replayPlan struct {
	res    ReplayResult
	spec   ReplaySpec
	events jetstream.Stream
	target jetstream.ConsumerConfig
}

// planReplay checks the consumer, narrows its filters by the spec's subject and fixes the
// window's sequences and size.
func planReplay(ctx context.Context, js jetstream.JetStream, spec ReplaySpec) (replayPlan, error) {
	p := replayPlan{spec: spec, res: ReplayResult{Consumer: spec.Consumer, Force: spec.Force}}
	if spec.Consumer == "" {
		return p, errors.New("replay: which consumer? (--consumer)")
	}
	if spec.FromSeq == 0 && spec.Since.IsZero() {
		return p, errors.New("replay: where does the window start? (--since or --from-seq)")
	}
	if spec.Rate < 0 {
		return p, fmt.Errorf("replay: negative rate %g", spec.Rate)
	}
	events, err := js.Stream(ctx, streams.Events)
	if err != nil {
		return p, fmt.Errorf("stream %s: %w", streams.Events, err)
	}
	p.events = events
	c, err := events.Consumer(ctx, spec.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return p, fmt.Errorf("replay: no consumer %q on %s", spec.Consumer, streams.Events)
	}
	if err != nil {
		return p, err
	}
	p.target = c.CachedInfo().Config
	if _, isReplay := consumer.ReadReplayWindow(p.target); isReplay {
		return p, fmt.Errorf("replay: %s is a replay; name the consumer it replays to", spec.Consumer)
	}
	own := filters(p.target)
	if len(own) == 0 {
		own = []string{">"}
	}
	p.res.Filters = narrowFilters(own, spec.Subject)
	if len(p.res.Filters) == 0 {
		return p, fmt.Errorf("replay: subject %s does not overlap consumer %s's filters %s: it would feed the consumer events it never subscribed to",
			spec.Subject, spec.Consumer, strings.Join(own, ", "))
	}
	info, err := events.Info(ctx)
	if err != nil {
		return p, err
	}
	last := info.State.LastSeq
	from := spec.FromSeq
	if from == 0 {
		if from, err = startSeqAt(ctx, events, spec.Since); err != nil {
			return p, err
		}
	}
	until := min(spec.UntilSeq, last)
	switch {
	case spec.UntilSeq > 0:
	case !spec.Until.IsZero():
		next, err := startSeqAt(ctx, events, spec.Until)
		if err != nil {
			return p, err
		}
		until = min(next-1, last)
	default:
		until = last
	}
	p.res.FromSeq, p.res.UntilSeq = from, until
	if from > until || until == 0 {
		return p, nil // an empty window
	}
	n, err := countBetween(ctx, events, p.res.Filters, from, until)
	if err != nil {
		return p, err
	}
	p.res.Total = n
	return p, nil
}

// start creates the replay consumer in the first free slot of the consumer.
func (p replayPlan) start(ctx context.Context, js jetstream.JetStream) (ReplayResult, error) {
	abandon := p.spec.AbandonAfter
	if abandon == 0 {
		abandon = DefaultAbandonAfter
	}
	w := consumer.ReplayWindow{Target: p.spec.Consumer, ID: strconv.FormatInt(time.Now().UnixNano(), 36),
		Filters: p.res.Filters, FromSeq: p.res.FromSeq, UntilSeq: p.res.UntilSeq, Force: p.spec.Force, Rate: p.spec.Rate,
		Events: p.res.Total, Requested: time.Now()}
	if err := w.Validate(); err != nil {
		return p.res, err
	}
	for slot := 1; slot <= consumer.ReplaySlots; slot++ {
		cfg := w.ConsumerConfig(slot, p.target, abandon)
		if p.spec.Paused {
			forever := time.Now().AddDate(10, 0, 0)
			cfg.PauseUntil = &forever
		}
		_, err := p.events.CreateConsumer(ctx, cfg)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			continue
		}
		if err != nil {
			return p.res, fmt.Errorf("replay: create %s: %w", cfg.Durable, err)
		}
		p.res.Replay, p.res.ID, p.res.Paused = cfg.Durable, w.ID, p.spec.Paused
		return p.res, nil
	}
	return p.res, fmt.Errorf("replay: %d replays to %s are under way already (fsctl status lists them); let one finish, or cancel one with fsctl replay --cancel %s",
		consumer.ReplaySlots, p.spec.Consumer, consumer.ReplayName(p.spec.Consumer, 1))
}

// countSubjects counts the window's events per subject (a dry run's detail), reading their
// headers only.
func (p *replayPlan) countSubjects(ctx context.Context) error {
	p.res.BySubject = map[string]int{}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: p.res.Filters, HeadersOnly: true,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: p.res.FromSeq}
	return ReadOrdered(ctx, p.events, cfg, func(m jetstream.Msg, meta *jetstream.MsgMetadata) (bool, error) {
		if meta.Sequence.Stream > p.res.UntilSeq {
			return false, nil
		}
		p.res.BySubject[m.Subject()]++
		return meta.Sequence.Stream < p.res.UntilSeq, nil
	})
}

// ReplayProgress is how far a replay got.
type ReplayProgress struct {
	// Replayed of Total events of the window are settled.
	Replayed, Total int
	// Unpulled is how long no replica of the consumer has pulled the replay — its service
	// is down, or older than replays on EVENTS — or 0 while one does.
	Unpulled time.Duration
}

// FollowReplay follows replay consumer name until its window is settled (the service then
// deletes it), calling progress after every look (four a second). If ctx ends
// first it pauses the replay and returns with Paused set: nothing more is re-delivered until
// ResumeReplay, and a replay left paused is deleted by the server after its abandon
// threshold.
func FollowReplay(ctx context.Context, js jetstream.JetStream, name string, progress func(ReplayProgress)) (ReplayResult, error) {
	events, err := js.Stream(ctx, streams.Events)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("stream %s: %w", streams.Events, err)
	}
	var last ReplayResult
	seen := false
	var idleSince time.Time
	past := &pastWindow{every: 5 * time.Second} // counting costs the server a pass over the stream's subjects
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := replayStatus(ctx, events, name, past)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound) && seen:
			// The service deleted it: its window is settled.
			last.Replayed = last.Total
			report(progress, ReplayProgress{Replayed: last.Replayed, Total: last.Total})
			return last, nil
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			return last, fmt.Errorf("replay %s: no such replay (finished, cancelled or abandoned)", name)
		case err != nil && ctx.Err() == nil:
			return last, err
		case err == nil:
			seen = true
			moved := st.result().Replayed != last.Replayed
			last = st.result()
			p := ReplayProgress{Replayed: last.Replayed, Total: last.Total}
			switch {
			case st.Paused || st.Waiting > 0 || st.AckPending > 0 || moved:
				idleSince = time.Time{}
			case idleSince.IsZero():
				idleSince = time.Now()
			default:
				p.Unpulled = time.Since(idleSince)
			}
			report(progress, p)
			if st.Settled {
				return last, nil
			}
		}
		select {
		case <-ctx.Done():
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := PauseReplay(pctx, js, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return last, fmt.Errorf("replay %s: interrupted, and not paused: %w", name, err)
			}
			last.Paused = true
			return last, nil
		case <-t.C:
		}
	}
}

func report(progress func(ReplayProgress), p ReplayProgress) {
	if progress != nil {
		progress(p)
	}
}

// ResumeReplay resumes the paused replay name.
func ResumeReplay(ctx context.Context, js jetstream.JetStream, name string) error {
	if _, err := js.ResumeConsumer(ctx, streams.Events, name); err != nil {
		return fmt.Errorf("resume replay %s: %w", name, err)
	}
	return nil
}

// PauseReplay pauses the replay name until resumed.
func PauseReplay(ctx context.Context, js jetstream.JetStream, name string) error {
	if _, err := js.PauseConsumer(ctx, streams.Events, name, time.Now().AddDate(10, 0, 0)); err != nil {
		return fmt.Errorf("pause replay %s: %w", name, err)
	}
	return nil
}

// CancelReplay deletes the replay name; events already applied stay applied.
func CancelReplay(ctx context.Context, js jetstream.JetStream, name string) error {
	events, err := js.Stream(ctx, streams.Events)
	if err == nil {
		_, err = replayStatus(ctx, events, name, &pastWindow{}) // refuse to delete what is no replay
	}
	if err == nil {
		err = events.DeleteConsumer(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("cancel replay %s: %w", name, err)
	}
	return nil
}

// ReplayStatus is one replay under way.
type ReplayStatus struct {
	// ConsumerStatus is the replay consumer's, as `nats consumer info` shows it (its
	// pending count runs to the end of the stream, past the window).
	ConsumerStatus
	Target    string    `json:"target"`
	ID        string    `json:"id"`
	FromSeq   uint64    `json:"from_seq"`
	UntilSeq  uint64    `json:"until_seq"`
	Force     bool      `json:"force,omitempty"`
	Rate      float64   `json:"rate,omitempty"`
	Events    int       `json:"events"`    // in the window when requested
	Remaining uint64    `json:"remaining"` // of the window, not yet settled
	Requested time.Time `json:"requested"`
	Settled   bool      `json:"settled"` // the service deletes it at its next look
	// Waiting is the pull requests of the service's replicas waiting on it: none while no
	// replica runs it.
	Waiting int `json:"waiting"`
}

func (st ReplayStatus) result() ReplayResult {
	done := max(0, st.Events-int(st.Remaining))
	if st.Settled {
		done = st.Events
	}
	return ReplayResult{Replay: st.Name, ID: st.ID, Consumer: st.Target, Filters: st.FilterSubjects, FromSeq: st.FromSeq,
		UntilSeq: st.UntilSeq, Total: st.Events, Replayed: done, Paused: st.Paused, Force: st.Force}
}

// replayStatus reads replay consumer name of events; a consumer that is no replay is an
// error wrapping jetstream.ErrConsumerNotFound.
func replayStatus(ctx context.Context, events jetstream.Stream, name string, past *pastWindow) (ReplayStatus, error) {
	c, err := events.Consumer(ctx, name)
	if err != nil {
		return ReplayStatus{}, err
	}
	info := c.CachedInfo()
	w, ok := consumer.ReadReplayWindow(info.Config)
	if !ok {
		return ReplayStatus{}, fmt.Errorf("%s is no replay: %w", name, jetstream.ErrConsumerNotFound)
	}
	return readReplayStatus(ctx, events, info, w, past)
}

// readReplayStatus is the status of the replay consumer with info, of window w. What
// remains of the window is what the consumer has not delivered up to the window's end —
// its pending count less what lies past the end (past counts that) — and what it has
// delivered and not seen acknowledged.
func readReplayStatus(ctx context.Context, events jetstream.Stream, info *jetstream.ConsumerInfo, w consumer.ReplayWindow, past *pastWindow) (ReplayStatus, error) {
	st := ReplayStatus{ConsumerStatus: consumerStatus(streams.Events, info), Target: w.Target, ID: w.ID, FromSeq: w.FromSeq,
		UntilSeq: w.UntilSeq, Force: w.Force, Rate: w.Rate, Events: w.Events, Requested: w.Requested, Settled: consumer.ReplaySettled(info, w),
		Waiting: info.NumWaiting}
	if st.Settled {
		return st, nil
	}
	undelivered := uint64(0)
	if info.Delivered.Stream < w.UntilSeq {
		beyond, err := past.count(ctx, events, w)
		if err != nil {
			return st, err
		}
		undelivered = info.NumPending - min(beyond, info.NumPending)
	}
	st.Remaining = undelivered + uint64(info.NumAckPending)
	return st, nil
}

// pastWindow counts the events past a replay window's end that its consumer selects (they
// grow as events arrive), and remembers the count for every.
type pastWindow struct {
	every time.Duration // 0: count every time
	n     uint64
	at    time.Time
}

func (p *pastWindow) count(ctx context.Context, events jetstream.Stream, w consumer.ReplayWindow) (uint64, error) {
	if !p.at.IsZero() && time.Since(p.at) < p.every {
		return p.n, nil
	}
	n, err := pendingFrom(ctx, events, w.Filters, w.UntilSeq+1)
	if err != nil {
		return 0, err
	}
	p.n, p.at = n, time.Now()
	return n, nil
}

// startSeqAt returns the sequence of the first event stored at or after t (the last
// sequence + 1 if none is): where a consumer starting at t starts.
func startSeqAt(ctx context.Context, events jetstream.Stream, t time.Time) (uint64, error) {
	c, err := events.CreateConsumer(ctx, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t,
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, InactiveThreshold: time.Minute})
	if err != nil {
		return 0, fmt.Errorf("find the first event at %s: %w", t.Format(time.RFC3339), err)
	}
	info := c.CachedInfo()
	_ = events.DeleteConsumer(context.WithoutCancel(ctx), info.Name)
	return info.Delivered.Stream + 1, nil
}

// countBetween counts the events from sequence from to until (both included) that filters
// select, from what the server knows of the stream's subjects, without reading a message.
func countBetween(ctx context.Context, events jetstream.Stream, filters []string, from, until uint64) (int, error) {
	a, err := pendingFrom(ctx, events, filters, from)
	if err != nil {
		return 0, err
	}
	b, err := pendingFrom(ctx, events, filters, until+1)
	if err != nil {
		return 0, err
	}
	return int(a - min(a, b)), nil
}

// pendingFrom counts the events at sequence seq and after that filters select.
func pendingFrom(ctx context.Context, events jetstream.Stream, filters []string, seq uint64) (uint64, error) {
	cfg := jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq,
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, InactiveThreshold: time.Minute}
	if len(filters) == 1 {
		cfg.FilterSubject = filters[0]
	} else {
		cfg.FilterSubjects = filters
	}
	c, err := events.CreateConsumer(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("count events from %d: %w", seq, err)
	}
	info := c.CachedInfo()
	_ = events.DeleteConsumer(context.WithoutCancel(ctx), info.Name)
	return info.NumPending, nil
}
