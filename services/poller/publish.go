package poller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/event"
)

// EventSource is the CloudEvents source of polled events, kept as "servicetrade-poll/<tenant>".
const EventSource = "servicetrade-poll"

// Actions of polled events. A poll sees an entity's state, not what happened to it: an
// entity never updated since it was created is "created", any other "updated". Deletions
// cannot be seen.
const (
	ActionCreated = "created"
	ActionUpdated = "updated"
)

// DedupID is the Nats-Msg-Id and CloudEvents id of the polled event about version updated
// (Unix seconds) of entity id: pl:<tenant>:<entity>:<id>:<updated>. It depends on nothing
// else, so every walk that reads the same version publishes the same id.
func DedupID(tenant, entity string, id, updated int64) string {
	b := make([]byte, 0, 64)
	b = append(b, "pl:"...)
	b = append(b, tenant...)
	b = append(b, ':')
	b = append(b, entity...)
	b = append(b, ':')
	b = strconv.AppendInt(b, id, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, updated, 10)
	return string(b)
}

// newMessage builds the event about e: subject events.<tenant>.<entity>.<id>.<action>, a
// CloudEvent whose time is e's update time and whose data is e's JSON, of origin poll.
func newMessage(tenant, entity string, e polled, received time.Time) (*nats.Msg, error) {
	action := ActionUpdated
	if e.created == e.updated {
		action = ActionCreated
	}
	id := strconv.FormatInt(e.id, 10)
	ce := event.New(EventSource, tenant, entity, id, action, DedupID(tenant, entity, e.id, e.updated), time.Unix(e.updated, 0), received, e.data)
	m, err := event.NewMessage(&ce, event.OriginPoll)
	if err != nil {
		return nil, err
	}
	return m.NATS(), nil
}

// errPublish: JetStream did not acknowledge an event within the retry budget.
var errPublish = errors.New("publish to JetStream failed")

// maxInFlight bounds the events of one walk awaiting their acknowledgement.
const maxInFlight = 256

// ackWait is how long an acknowledgement is awaited before the event is published again
// (its Nats-Msg-Id makes that safe).
const ackWait = 10 * time.Second

// publisher publishes one walk's events asynchronously and counts their acknowledgements.
type publisher struct {
	js       jetstream.JetStream
	retry    RetryConfig
	res      *KindResult
	log      zerolog.Logger
	inFlight []jetstream.PubAckFuture
}

// publish sends m without waiting for its acknowledgement, unless maxInFlight are
// outstanding: then it waits for the older half first.
func (p *publisher) publish(ctx context.Context, m *nats.Msg) error {
	if len(p.inFlight) >= maxInFlight {
		if err := p.settle(ctx, maxInFlight/2); err != nil {
			return err
		}
	}
	f, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Second))
	if err != nil {
		// The connection's window of async publishes is full (others share it) or the
		// connection is down: wait for ours, then publish this one with retries.
		if err := p.settle(ctx, len(p.inFlight)); err != nil {
			return err
		}
		return p.publishSync(ctx, m)
	}
	p.inFlight = append(p.inFlight, f)
	return nil
}

// settle waits for the acknowledgements of the oldest n events in flight. An event whose
// publish failed, or whose acknowledgement does not come within ackWait, is published again
// synchronously.
func (p *publisher) settle(ctx context.Context, n int) error {
	timer := time.NewTimer(ackWait)
	defer timer.Stop()
	for i, f := range p.inFlight[:n] {
		timer.Reset(ackWait)
		var err error
		select {
		case ack := <-f.Ok():
			p.count(ack)
		case perr := <-f.Err():
			p.log.Debug().Err(perr).Str("subject", f.Msg().Subject).Msg("poller: async publish failed, publishing again")
			err = p.publishSync(ctx, f.Msg())
		case <-timer.C:
			err = p.publishSync(ctx, f.Msg())
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			p.inFlight = p.inFlight[i+1:]
			return err
		}
	}
	p.inFlight = append(p.inFlight[:0], p.inFlight[n:]...)
	return nil
}

// publishSync publishes m and waits for its acknowledgement, retrying with backoff for the
// retry budget.
func (p *publisher) publishSync(ctx context.Context, m *nats.Msg) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = p.retry.InitialInterval, p.retry.MaxInterval, 0
	b.Reset()
	deadline := time.Now().Add(p.retry.Budget)
	for {
		ack, err := p.js.PublishMsg(ctx, m)
		if err == nil {
			p.count(ack)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := b.NextBackOff()
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%w: %s: %w", errPublish, m.Subject, err)
		}
		p.res.Retries++
		p.log.Debug().Err(err).Str("subject", m.Subject).Dur("wait", wait).Msg("poller: publish failed, retrying")
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (p *publisher) count(ack *jetstream.PubAck) {
	if ack.Duplicate {
		p.res.Duplicates++
	} else {
		p.res.Published++
	}
}
