package ops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/streams"
)

// legacyReplay is the stream that held copies of replayed events and redriven dead letters,
// on replay.<consumer>.<original subject>, before replays read EVENTS in place and redrives
// moved to DLQ. Only the migration reads it.
const legacyReplay = "REPLAY"

// Headers of its copies.
const (
	legacyReplaySequence = "Fs-Replay-Sequence" // the original EVENTS sequence
	legacyReplayForce    = "Fs-Replay-Force"    // "true": forced past the ledger
)

// migrateLegacyReplay moves what the REPLAY stream still holds into the present design, then
// deletes it. For each consumer's durable on REPLAY, the copies past its acknowledgement
// floor are what it had not settled:
//   - replayed events become a replay on EVENTS (consumer.ReplayWindow) of the same
//     sequences — from the lowest to the highest, through the consumer's own filters, forced
//     if they were — which the service runs;
//   - redriven dead letters still in DLQ are redriven again, through DLQ.
//
// Events of that range the old replay did not include (it may have been narrowed by a
// subject) are the consumer's own events, which its ledger skips unless the replay was
// forced. It returns what it did; with no REPLAY stream, nothing.
func migrateLegacyReplay(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	s, err := js.Stream(ctx, legacyReplay)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", legacyReplay, err)
	}
	var done []string
	lister := s.ListConsumers(ctx)
	var durables []*jetstream.ConsumerInfo
	for ci := range lister.Info() {
		if ci.Config.Durable != "" {
			durables = append(durables, ci)
		}
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("consumers of %s: %w", legacyReplay, err)
	}
	for _, ci := range durables {
		d, err := migrateLegacyConsumer(ctx, js, s, ci)
		done = append(done, d...)
		if err != nil {
			return done, fmt.Errorf("migrate %s's re-deliveries from %s (nothing is deleted; run fsctl setup again): %w", ci.Name, legacyReplay, err)
		}
	}
	if err := js.DeleteStream(ctx, legacyReplay); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return done, fmt.Errorf("delete stream %s: %w", legacyReplay, err)
	}
	return append(done, "stream "+legacyReplay+" deleted (replays read EVENTS in place; redrives go through DLQ)"), nil
}

// legacyRun is one old replay's unsettled copies.
type legacyRun struct {
	force    bool
	from, to uint64
}

func migrateLegacyConsumer(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, ci *jetstream.ConsumerInfo) ([]string, error) {
	runs := map[string]*legacyRun{}
	var letters []uint64
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{"replay." + ci.Name + ".>"},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: ci.AckFloor.Stream + 1}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.State.Msgs > 0 && ci.AckFloor.Stream < info.State.LastSeq {
		err = ReadOrdered(ctx, s, cfg, func(m jetstream.Msg, _ *jetstream.MsgMetadata) (bool, error) {
			h := m.Headers()
			if dl, _ := strconv.ParseUint(h.Get(consumer.HeaderRedriveOf), 10, 64); dl != 0 {
				letters = append(letters, dl)
				return true, nil
			}
			seq, _ := strconv.ParseUint(h.Get(legacyReplaySequence), 10, 64)
			if seq == 0 {
				return true, nil
			}
			// replay:<consumer>:<sequence>:<run>; copies of one run share their run.
			id := h.Get(jetstream.MsgIDHeader)
			run := id[strings.LastIndexByte(id, ':')+1:] + ":" + h.Get(legacyReplayForce)
			r := runs[run]
			if r == nil {
				r = &legacyRun{force: h.Get(legacyReplayForce) == "true", from: seq, to: seq}
				runs[run] = r
			}
			r.from, r.to = min(r.from, seq), max(r.to, seq)
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	var done []string
	keys := make([]string, 0, len(runs))
	for k := range runs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := runs[k]
		res, err := StartReplay(ctx, js, ReplaySpec{Consumer: ci.Name, FromSeq: r.from, UntilSeq: r.to, Force: r.force})
		if err != nil {
			return done, err
		}
		if res.Total > 0 {
			done = append(done, fmt.Sprintf("replay of EVENTS %d..%d to %s in progress, moved to %s", r.from, r.to, ci.Name, res.Replay))
		}
	}
	dlq, err := js.Stream(ctx, streams.DeadLetters)
	if err != nil && len(letters) > 0 {
		return done, err
	}
	for _, seq := range letters {
		m, err := dlq.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // settled meanwhile
		}
		if err != nil {
			return done, err
		}
		msg, err := consumer.ReadDeadLetter(seq, m.Subject, m.Header, m.Data).RedriveMsg()
		if err == nil {
			_, err = js.PublishMsg(ctx, msg)
		}
		if err != nil {
			return done, fmt.Errorf("redrive dead letter %d: %w", seq, err)
		}
		done = append(done, fmt.Sprintf("redrive of dead letter %d to %s in progress, moved to DLQ", seq, ci.Name))
	}
	return done, nil
}
