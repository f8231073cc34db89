package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// replays finds the replays requested of a consumer — its replay slots on EVENTS — and runs
// each through the consumer's handler while it is not paused, until its window is settled;
// then it deletes the replay consumer. Every replica of a service does so: they share a
// replay as they share the live consumer, and the ledger orders them.
type replays struct {
	js      jetstream.JetStream
	events  jetstream.Stream
	cfg     Config
	handler BatchHandler
	poll    time.Duration
	running map[string]*runningReplay // by replay consumer
}

type runningReplay struct {
	id   string
	stop context.CancelFunc
	done chan struct{}
}

// run looks for replays every poll until ctx ends, then drains the ones it runs.
func (r *replays) run(ctx context.Context) error {
	r.running = map[string]*runningReplay{}
	t := time.NewTicker(r.poll)
	defer t.Stop()
	for {
		r.check(ctx)
		select {
		case <-ctx.Done():
			for name := range r.running {
				r.stop(name)
			}
			return nil
		case <-t.C:
		}
	}
}

// check looks at every replay slot once.
func (r *replays) check(ctx context.Context) {
	log := r.cfg.Logger
	for slot := 1; slot <= ReplaySlots; slot++ {
		name := ReplayName(r.cfg.Name, slot)
		c, err := r.events.Consumer(ctx, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			r.stop(name) // done, cancelled, or abandoned
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Debug().Err(err).Str("replay", name).Msg("replay slot")
			}
			continue
		}
		info := c.CachedInfo()
		w, ok := ReadReplayWindow(info.Config)
		if !ok || w.Target != r.cfg.Name {
			log.Warn().Str("replay", name).Msg("a consumer in a replay slot is no replay of this consumer; left alone")
			continue
		}
		if run := r.running[name]; run != nil && run.id != w.ID {
			r.stop(name) // a new replay in a slot whose last one this process still ran
		}
		switch {
		case info.Paused:
			r.stop(name)
		case ReplaySettled(info, w):
			r.stop(name)
			if err := r.events.DeleteConsumer(ctx, name); err == nil {
				log.Info().Str("replay", name).Str("id", w.ID).Uint64("from_seq", w.FromSeq).Uint64("until_seq", w.UntilSeq).Msg("replay done")
			} else if !errors.Is(err, jetstream.ErrConsumerNotFound) && ctx.Err() == nil {
				log.Warn().Err(err).Str("replay", name).Msg("replay done, not deleted")
			}
		case r.running[name] == nil:
			rctx, stop := context.WithCancel(ctx)
			run := &runningReplay{id: w.ID, stop: stop, done: make(chan struct{})}
			r.running[name] = run
			log.Info().Str("replay", name).Str("id", w.ID).Uint64("from_seq", w.FromSeq).Uint64("until_seq", w.UntilSeq).
				Bool("force", w.Force).Float64("rate", w.Rate).Msg("replaying")
			go func() {
				defer close(run.done)
				if err := newReplay(r.js, r.cfg, c, w, r.handler).Run(rctx); err != nil {
					log.Warn().Err(err).Str("replay", name).Msg("replay stopped")
				}
			}()
		}
	}
}

// stop drains the replay this process runs on consumer name, if any.
func (r *replays) stop(name string) {
	if run := r.running[name]; run != nil {
		run.stop()
		<-run.done
		delete(r.running, name)
	}
}
