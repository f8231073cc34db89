// Package ops is what fieldstream's operators do, as functions over JetStream: look at the
// backlog, replay a window to one consumer, inspect, redrive and purge dead letters, add,
// pause and resume consumers. fsctl is its command line; the dashboard reads Status.
package ops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/streams"
)

// StreamStatus is one stream's size.
type StreamStatus struct {
	Name     string    `json:"name"`
	Messages uint64    `json:"messages"`
	Bytes    uint64    `json:"bytes"`
	FirstSeq uint64    `json:"first_seq"`
	LastSeq  uint64    `json:"last_seq"`
	LastTime time.Time `json:"last_time"`
}

// ConsumerStatus is one durable consumer's backlog, as `nats consumer info` reports it.
type ConsumerStatus struct {
	Stream         string    `json:"stream"`
	Name           string    `json:"name"`
	Pending        uint64    `json:"pending"`     // not yet delivered
	AckPending     int       `json:"ack_pending"` // delivered, not acknowledged
	Redelivered    int       `json:"redelivered"`
	AckFloor       uint64    `json:"ack_floor"` // stream sequence
	LastActive     time.Time `json:"last_active,omitempty"`
	Paused         bool      `json:"paused"`
	PausedUntil    time.Time `json:"paused_until,omitempty"`
	FilterSubjects []string  `json:"filter_subjects"`
	DeadLetters    int       `json:"dead_letters"`
}

// Status is the state of fieldstream's streams, consumers, replays and dead letters, and
// the tenant records the gateway cannot use.
type Status struct {
	Streams []StreamStatus `json:"streams"`
	// Consumers are the durable consumers of EVENTS and the redrive consumers of DLQ
	// (replays are under Replays), by stream, then name.
	Consumers   []ConsumerStatus `json:"consumers"`
	Replays     []ReplayStatus   `json:"replays"`
	DeadLetters []Group          `json:"dead_letter_groups"`
	// RejectedTenants are tenants whose newest record does not parse: the gateway serves
	// each from its last good record (Serving), or not at all.
	RejectedTenants []tenant.Rejection `json:"rejected_tenant_records"`
}

// GetStatus reads every stream fieldstream uses, every durable consumer on EVENTS — the
// replays among them apart — and on DLQ (ephemeral readers, such as an operator's, are left
// out), and groups the dead letters. A REPLAY stream left from before replays read EVENTS
// in place is shown until `fsctl setup` migrates it.
func GetStatus(ctx context.Context, js jetstream.JetStream) (Status, error) {
	var st Status
	for _, name := range []string{streams.Events, streams.DeadLetters, legacyReplay} {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return st, fmt.Errorf("stream %s: %w", name, err)
		}
		st.Streams = append(st.Streams, StreamStatus{Name: name, Messages: info.State.Msgs, Bytes: info.State.Bytes,
			FirstSeq: info.State.FirstSeq, LastSeq: info.State.LastSeq, LastTime: info.State.LastTime})
		lister := s.ListConsumers(ctx)
		for ci := range lister.Info() {
			if ci.Config.Durable == "" {
				continue // ephemeral: an operator's reader, not a fieldstream consumer
			}
			if w, ok := consumer.ReadReplayWindow(ci.Config); ok && name == streams.Events {
				rs, err := readReplayStatus(ctx, s, ci, w, &pastWindow{})
				if err != nil {
					return st, fmt.Errorf("replay %s: %w", ci.Name, err)
				}
				st.Replays = append(st.Replays, rs)
				continue
			}
			st.Consumers = append(st.Consumers, consumerStatus(name, ci))
		}
		if err := lister.Err(); err != nil {
			return st, fmt.Errorf("consumers of %s: %w", name, err)
		}
	}
	letters, err := ListDeadLetters(ctx, js, Selection{})
	if err != nil {
		return st, err
	}
	st.DeadLetters = GroupDeadLetters(letters)
	for i := range st.Consumers {
		if st.Consumers[i].Stream != streams.Events {
			continue
		}
		for _, g := range st.DeadLetters {
			if g.Consumer == st.Consumers[i].Name {
				st.Consumers[i].DeadLetters += g.Count
			}
		}
	}
	if st.RejectedTenants, err = RejectedTenants(ctx, js); err != nil {
		return st, err
	}
	sort.Slice(st.Consumers, func(i, j int) bool {
		if st.Consumers[i].Stream != st.Consumers[j].Stream {
			return st.Consumers[i].Stream < st.Consumers[j].Stream
		}
		return st.Consumers[i].Name < st.Consumers[j].Name
	})
	sort.Slice(st.Replays, func(i, j int) bool { return st.Replays[i].Name < st.Replays[j].Name })
	return st, nil
}

// consumerStatus is the status of the consumer of stream whose info is ci.
func consumerStatus(stream string, ci *jetstream.ConsumerInfo) ConsumerStatus {
	cs := ConsumerStatus{Stream: stream, Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending,
		Redelivered: ci.NumRedelivered, AckFloor: ci.AckFloor.Stream, Paused: ci.Paused,
		FilterSubjects: filters(ci.Config)}
	if ci.Delivered.Last != nil {
		cs.LastActive = *ci.Delivered.Last
	}
	if ci.Paused {
		cs.PausedUntil = time.Now().Add(ci.PauseRemaining)
	}
	return cs
}

func filters(c jetstream.ConsumerConfig) []string {
	if len(c.FilterSubjects) > 0 {
		return c.FilterSubjects
	}
	if c.FilterSubject != "" {
		return []string{c.FilterSubject}
	}
	return nil
}

// RejectedTenants reads the tenants bucket as a gateway starting now would — each key's
// history, every record through tenant.Parse — and returns the tenants whose newest record
// it rejects, with the revision it serves instead. None when there is no bucket.
func RejectedTenants(ctx context.Context, js jetstream.JetStream) ([]tenant.Rejection, error) {
	kv, err := js.KeyValue(ctx, tenant.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", tenant.Bucket, err)
	}
	dir, err := tenant.Watch(ctx, kv, zerolog.Nop())
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", tenant.Bucket, err)
	}
	defer dir.Stop()
	return dir.Rejected(), nil
}
