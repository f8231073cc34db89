package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fieldstream/fieldstream/streams"
	"github.com/nats-io/nats.go/jetstream"
)

// Deliver says where a new consumer starts: "all" (the whole stream), "new" (only what
// arrives from now on) or "since=<RFC 3339 time>".
type Deliver string

func (d Deliver) apply(cfg *jetstream.ConsumerConfig) error {
	switch {
	case d == "" || d == "all":
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	case d == "new":
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	case strings.HasPrefix(string(d), "since="):
		t, err := time.Parse(time.RFC3339, strings.TrimPrefix(string(d), "since="))
		if err != nil {
			return fmt.Errorf("--deliver %s: want since=<RFC 3339 time>, e.g. since=2026-11-29T08:00:00Z", d)
		}
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	default:
		return fmt.Errorf("--deliver %q: want all, new or since=<time>", d)
	}
	return nil
}

// AddConsumer subscribes a new durable consumer to EVENTS: explicit acks, the filter
// subjects given, starting where deliver says. It refuses to change an existing consumer.
func AddConsumer(ctx context.Context, js jetstream.JetStream, name string, subjects []string, deliver Deliver, description string) (*jetstream.ConsumerInfo, error) {
	if len(subjects) == 0 {
		return nil, errors.New("consumer add: --subjects is required")
	}
	cfg := jetstream.ConsumerConfig{
		Durable: name, Description: description, FilterSubjects: subjects,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: 10, MaxAckPending: 1000,
		Metadata: map[string]string{"fieldstream.dev/consumer": name},
	}
	if err := deliver.apply(&cfg); err != nil {
		return nil, err
	}
	c, err := js.CreateConsumer(ctx, streams.Events, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		return nil, fmt.Errorf("consumer add: %q exists already on %s", name, streams.Events)
	}
	if err != nil {
		return nil, fmt.Errorf("consumer add %s: %w", name, err)
	}
	return c.Info(ctx)
}

// PauseConsumer stops JetStream delivering to the consumer until until (JetStream consumer
// pause); ResumeConsumer undoes it.
func PauseConsumer(ctx context.Context, js jetstream.JetStream, name string, until time.Time) (time.Time, error) {
	r, err := js.PauseConsumer(ctx, streams.Events, name, until)
	if err != nil {
		return time.Time{}, fmt.Errorf("pause %s: %w", name, err)
	}
	return r.PauseUntil, nil
}

// ResumeConsumer resumes a paused consumer.
func ResumeConsumer(ctx context.Context, js jetstream.JetStream, name string) error {
	if _, err := js.ResumeConsumer(ctx, streams.Events, name); err != nil {
		return fmt.Errorf("resume %s: %w", name, err)
	}
	return nil
}
