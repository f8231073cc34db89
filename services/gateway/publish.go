package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/event"
)

// outgoing is one event ready to publish.
type outgoing struct {
	subject string
	dedupID string
	data    []byte
}

// newOutgoing builds the message for ce: subject, dedup id and CloudEvent JSON.
func newOutgoing(ce event.CloudEvent) (outgoing, error) {
	subj, err := event.Subject(ce.Tenant, ce.Entity, ce.EntityID, ce.Action)
	if err != nil {
		return outgoing{}, fmt.Errorf("%w: %v", errNotDeliverable, err)
	}
	data := ce.AppendJSON(make([]byte, 0, len(ce.Data)+512))
	return outgoing{subject: subj, dedupID: ce.ID, data: data}, nil
}

// publishResult counts what JetStream did with a request's events.
type publishResult struct {
	Stored     int `json:"stored"`
	Duplicates int `json:"duplicates"`
}

type publisher struct {
	js      jetstream.JetStream
	metrics *metrics
}

// publish sends every message asynchronously, each with its dedup id as Nats-Msg-Id, and
// waits for all acknowledgements until ctx ends. It returns an error matching
// errNotPersisted unless every message was acknowledged; the messages that were stored
// stay stored and the sender's retry, with the same ids, is deduplicated by JetStream.
func (p *publisher) publish(ctx context.Context, tenant, source string, msgs []outgoing) (publishResult, error) {
	var res publishResult
	if !p.js.Conn().IsConnected() {
		return res, notPersisted(fmt.Errorf("not connected to NATS"))
	}
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		msg := &nats.Msg{
			Subject: m.subject,
			Data:    m.data,
			Header:  nats.Header{jetstream.MsgIDHeader: []string{m.dedupID}, "Content-Type": []string{event.ContentType}},
		}
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithStallWait(remaining(ctx)))
		if err != nil {
			return res, notPersisted(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				res.Duplicates++
			} else {
				res.Stored++
			}
		case err := <-f.Err():
			return res, notPersisted(err)
		case <-ctx.Done():
			return res, notPersisted(ctx.Err())
		}
	}
	p.metrics.published(tenant, source, res, time.Since(start))
	return res, nil
}

func remaining(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		if r := time.Until(d); r > 0 {
			return r
		}
		return time.Millisecond
	}
	return 4 * time.Second
}

func notPersisted(cause error) error {
	return fmt.Errorf("%w: %v", errNotPersisted, cause)
}
