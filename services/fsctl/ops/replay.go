package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/streams"
)

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
	// Subject narrows the window to a subject filter within the consumer's own.
	Subject string
	// Rate limits re-deliveries per second (0: as fast as JetStream takes them).
	Rate float64
	// Force applies events the consumer's ledger says it already applied.
	Force bool
}

// ReplayResult is what a replay did, or would do (dry run).
type ReplayResult struct {
	Consumer  string         `json:"consumer"`
	FromSeq   uint64         `json:"from_seq"`
	UntilSeq  uint64         `json:"until_seq"`
	Total     int            `json:"total"`
	BySubject map[string]int `json:"by_subject"`
	Sent      int            `json:"sent"`
	LastSeq   uint64         `json:"last_seq,omitempty"` // the last event sent
	Stopped   bool           `json:"stopped,omitempty"`  // interrupted before the end
	DryRun    bool           `json:"dry_run,omitempty"`
	Force     bool           `json:"force,omitempty"`
}

// Replay re-delivers the window of spec to spec.Consumer only, through the REPLAY stream on
// replay.<consumer>.<subject>; no other consumer sees anything. It first counts the window
// (with dryRun it stops there), then sends, calling progress after every event. Events the
// consumer already applied are skipped by its ledger unless spec.Force. If ctx ends it stops
// and reports how far it got (Stopped, Sent, LastSeq).
func Replay(ctx context.Context, js jetstream.JetStream, spec ReplaySpec, dryRun bool, progress func(sent, total int)) (ReplayResult, error) {
	res := ReplayResult{Consumer: spec.Consumer, DryRun: dryRun, Force: spec.Force, BySubject: map[string]int{}}
	stream, filters, err := replayWindow(ctx, js, &spec)
	if err != nil {
		return res, err
	}
	res.FromSeq, res.UntilSeq = spec.FromSeq, spec.UntilSeq
	count := func(m jetstream.Msg, seq uint64) error {
		if res.Total == 0 {
			res.FromSeq = seq
		}
		res.Total++
		res.BySubject[m.Subject()]++
		return nil
	}
	if err := walkWindow(ctx, stream, spec, filters, true, count); err != nil {
		return res, err
	}
	if dryRun || res.Total == 0 {
		return res, nil
	}
	var lim *rate.Limiter
	if spec.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(spec.Rate), max(1, int(spec.Rate/10)))
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var pending []jetstream.PubAckFuture
	var lastSent uint64
	// settle waits for the acks of what was sent so far; only then do Sent and LastSeq
	// count it, so an interrupted replay resumes exactly after what JetStream stored.
	settle := func(ctx context.Context) error {
		for _, f := range pending {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("re-deliver: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		res.Sent += len(pending)
		res.LastSeq = lastSent
		pending = pending[:0]
		if progress != nil {
			progress(res.Sent, res.Total)
		}
		return nil
	}
	send := func(m jetstream.Msg, seq uint64) error {
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				return err
			}
		}
		f, err := js.PublishMsgAsync(consumer.ReplayMsg(spec.Consumer, m.Subject(), seq, m.Headers(), m.Data(), spec.Force, run))
		if err != nil {
			return fmt.Errorf("re-deliver event %d: %w", seq, err)
		}
		pending, lastSent = append(pending, f), seq
		if len(pending) >= 2000 {
			return settle(ctx)
		}
		return nil
	}
	err = walkWindow(ctx, stream, spec, filters, false, send)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := settle(sctx); err == nil {
		err = serr
	}
	if ctx.Err() != nil {
		res.Stopped = true
		return res, nil
	}
	return res, err
}

// replayWindow checks the consumer and fixes the window's sequence bounds in spec.
func replayWindow(ctx context.Context, js jetstream.JetStream, spec *ReplaySpec) (jetstream.Stream, []string, error) {
	if spec.Consumer == "" {
		return nil, nil, errors.New("replay: which consumer? (--consumer)")
	}
	if spec.FromSeq == 0 && spec.Since.IsZero() {
		return nil, nil, errors.New("replay: where does the window start? (--since or --from-seq)")
	}
	stream, err := js.Stream(ctx, streams.Events)
	if err != nil {
		return nil, nil, fmt.Errorf("stream %s: %w", streams.Events, err)
	}
	if _, err := js.Stream(ctx, streams.Replay); err != nil {
		return nil, nil, fmt.Errorf("stream %s (apply streams/ first): %w", streams.Replay, err)
	}
	c, err := stream.Consumer(ctx, spec.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, nil, fmt.Errorf("replay: no consumer %q on %s", spec.Consumer, streams.Events)
	}
	if err != nil {
		return nil, nil, err
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return nil, nil, err
	}
	filters := filters(ci.Config)
	if spec.Subject != "" {
		filters = []string{spec.Subject}
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, nil, err
	}
	if spec.UntilSeq == 0 || spec.UntilSeq > info.State.LastSeq {
		spec.UntilSeq = info.State.LastSeq
	}
	return stream, append(filters[:0:0], filters...), nil
}

// walkWindow calls fn for every event of the window, in stream order.
func walkWindow(ctx context.Context, stream jetstream.Stream, spec ReplaySpec, filters []string, headersOnly bool, fn func(jetstream.Msg, uint64) error) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, HeadersOnly: headersOnly}
	if spec.FromSeq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, spec.FromSeq
	} else {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &spec.Since
	}
	return ReadOrdered(ctx, stream, cfg, func(m jetstream.Msg, meta *jetstream.MsgMetadata) (bool, error) {
		seq := meta.Sequence.Stream
		if seq > spec.UntilSeq || (!spec.Until.IsZero() && !meta.Timestamp.Before(spec.Until)) {
			return false, nil
		}
		if err := fn(m, seq); err != nil {
			return false, err
		}
		return seq < spec.UntilSeq, nil
	})
}
