package dashboard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/streams"
)

// Snapshot is what the dashboard shows at one moment: ops.GetStatus — the same data under
// the same JSON names as `fsctl status --json` — with the ingest rate, each consumer's lag,
// the dead-letter total and the replays in progress. It is the body of GET …/api/status.
type Snapshot struct {
	Time time.Time `json:"time"`
	// IngestRate is events per second stored in EVENTS over the last IngestWindowSeconds;
	// null until the dashboard has two readings of EVENTS far enough apart (the second
	// refresh of a page, or Options.RateWindow after a long pause).
	IngestRate          *float64           `json:"ingest_rate"`
	IngestWindowSeconds float64            `json:"ingest_window_seconds,omitempty"`
	Streams             []ops.StreamStatus `json:"streams"`
	// Consumers are the durable consumers of EVENTS and the redrive consumers of DLQ, by
	// stream, then name.
	Consumers []Consumer `json:"consumers"`
	// DeadLetters are grouped by consumer and fingerprint, largest group first.
	DeadLetters     []ops.Group `json:"dead_letter_groups"`
	DeadLetterTotal int         `json:"dead_letter_total"`
	// Replays are the replays under way (paused ones too) and the redrives with dead
	// letters not yet settled.
	Replays []Replay `json:"replays_in_progress"`
	// History is the last hour of ingest rate, backlog and dead letters, for the charts.
	History History `json:"history"`
}

// Replay is a replay under way, or a consumer's redrives (Kind "redrive": its window is
// the redriven dead letters, Events and Remaining what is not settled yet).
type Replay struct {
	ops.ReplayStatus
	Kind string `json:"kind"`
}

// Consumer is one consumer's status with its lag.
type Consumer struct {
	ops.ConsumerStatus
	// OldestUnacked is when the oldest message the consumer has not acknowledged was
	// stored; zero when it has nothing pending.
	OldestUnacked time.Time `json:"oldest_unacked,omitzero"`
	// LagSeconds is how long that message has waited (Snapshot.Time − OldestUnacked); 0
	// when the consumer is caught up.
	LagSeconds float64 `json:"lag_seconds"`
}

// Backlog is what the consumer has not settled: not yet delivered plus not acknowledged.
func (c Consumer) Backlog() uint64 { return c.Pending + uint64(max(c.AckPending, 0)) }

// Snapshot reads the status. Calls within Options.Reuse of a finished read share its
// result (and its error), and concurrent calls share one read, so any number of open
// pages cost one status read per Reuse. The shared read runs under Options.Timeout,
// detached from ctx so that one caller going away does not fail the others; ctx bounds
// only this caller's wait. The result is shared: treat it as read-only. Safe for
// concurrent use.
func (d *Dashboard) Snapshot(ctx context.Context) (Snapshot, error) {
	for {
		d.mu.Lock()
		if d.last != nil && d.opts.Now().Sub(d.lastAt) < d.opts.Reuse {
			last := d.last
			d.mu.Unlock()
			return last.snap, last.err
		}
		if wait := d.inflight; wait != nil {
			d.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return Snapshot{}, ctx.Err()
			}
		}
		done := make(chan struct{})
		d.inflight = done
		d.mu.Unlock()

		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.Timeout)
		snap, err := d.read(rctx)
		cancel()

		d.mu.Lock()
		d.last, d.lastAt, d.inflight = &result{snap: snap, err: err}, d.opts.Now(), nil
		d.mu.Unlock()
		close(done)
		return snap, err
	}
}

type result struct {
	snap Snapshot
	err  error
}

// read does one status read: ops.GetStatus, then the lag of every consumer with a backlog.
func (d *Dashboard) read(ctx context.Context) (Snapshot, error) {
	st, err := ops.GetStatus(ctx, d.js)
	if err != nil {
		return Snapshot{}, err
	}
	now := d.opts.Now()
	snap := Snapshot{Time: now, Streams: st.Streams, DeadLetters: st.DeadLetters, Consumers: make([]Consumer, 0, len(st.Consumers))}
	for _, s := range st.Streams {
		if s.Name == streams.Events {
			if rate, span, ok := d.rate.observe(now, s.LastSeq); ok {
				snap.IngestRate, snap.IngestWindowSeconds = &rate, span.Seconds()
			}
		}
	}
	for _, r := range st.Replays {
		snap.Replays = append(snap.Replays, Replay{ReplayStatus: r, Kind: "replay"})
	}
	handles := map[string]jetstream.Stream{}
	for _, cs := range st.Consumers {
		c := Consumer{ConsumerStatus: cs}
		if c.Backlog() > 0 {
			if c.OldestUnacked, err = d.oldestUnacked(ctx, handles, cs); err != nil {
				return Snapshot{}, err
			}
			if !c.OldestUnacked.IsZero() {
				c.LagSeconds = max(now.Sub(c.OldestUnacked).Seconds(), 0)
			}
		}
		snap.Consumers = append(snap.Consumers, c)
		if target, ok := strings.CutSuffix(c.Name, "-redrive"); ok && c.Stream == streams.DeadLetters && c.Backlog() > 0 {
			snap.Replays = append(snap.Replays, Replay{Kind: "redrive", ReplayStatus: ops.ReplayStatus{ConsumerStatus: cs, Target: target,
				Events: int(c.Backlog()), Remaining: c.Backlog()}})
		}
	}
	for _, g := range snap.DeadLetters {
		snap.DeadLetterTotal += g.Count
	}
	smp := sample{at: now, deadLetters: snap.DeadLetterTotal, backlog: map[string]uint64{}}
	for _, s := range snap.Streams {
		if s.Name == streams.Events {
			smp.eventsSeq = s.LastSeq
		}
	}
	for _, c := range snap.Consumers {
		if c.Stream == streams.Events {
			smp.backlog[c.Name] = c.Backlog()
		}
	}
	d.hist.add(smp)
	snap.History = d.hist.series()
	return snap, nil
}

// oldestUnacked is when the first message past the consumer's ack floor that its filters
// select was stored: everything at or below the floor is acknowledged, so that message is
// the oldest one not acknowledged. It costs one message get per filter subject.
func (d *Dashboard) oldestUnacked(ctx context.Context, streams map[string]jetstream.Stream, c ops.ConsumerStatus) (time.Time, error) {
	s := streams[c.Stream]
	if s == nil {
		var err error
		if s, err = d.js.Stream(ctx, c.Stream); err != nil {
			return time.Time{}, fmt.Errorf("stream %s: %w", c.Stream, err)
		}
		streams[c.Stream] = s
	}
	filters := c.FilterSubjects
	if len(filters) == 0 {
		filters = []string{">"}
	}
	var oldest *jetstream.RawStreamMsg
	for _, f := range filters {
		m, err := s.GetMsg(ctx, c.AckFloor+1, jetstream.WithGetMsgSubject(f))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("oldest unacknowledged message of %s on %s: %w", c.Name, c.Stream, err)
		}
		if oldest == nil || m.Sequence < oldest.Sequence {
			oldest = m
		}
	}
	if oldest == nil {
		return time.Time{}, nil
	}
	return oldest.Time, nil
}
