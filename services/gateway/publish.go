package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/fieldstream/fieldstream/pkg/event"
)

// newMessage builds the message of ce; an event that cannot make a subject is not
// deliverable.
func newMessage(ce *event.CloudEvent) (event.Message, error) {
	m, err := event.NewMessage(ce, "")
	if err != nil {
		return m, fmt.Errorf("%w: %v", errNotDeliverable, err)
	}
	return m, nil
}

// batchSize is the message's size as NATS counts it against max_payload plus room for
// the headers group commit adds (Nats-Batch-Id, -Sequence, -Commit).
func batchSize(m event.Message) int {
	const batchHeaders = 192
	return m.Size() + batchHeaders
}

// publishResult counts what JetStream did with a request's events.
type publishResult struct {
	Stored     int `json:"stored"`
	Duplicates int `json:"duplicates"`
}

// publisher persists the events of requests. With group commit (CommitMaxEvents > 1) it
// coalesces the events of concurrent requests into atomic JetStream batches: at most
// CommitConcurrency batches are in flight, and the requests that arrive meanwhile form
// the next one. A server that fsyncs before every acknowledgement (sync_interval: always)
// then pays one fsync per batch instead of one per event, and a lone request still goes
// out at once. A request is answered 2xx only from its batch's commit acknowledgement,
// which the server sends once the whole batch is stored; a batch that fails is answered
// 503 (or retried event by event) and may have left part of itself stored, which the
// sender's retry, deduplicated, completes.
//
// JetStream refuses a whole atomic batch that holds an event it already has, so one
// duplicate would cost every request of its batch a second, one-by-one publish. Senders
// repeat events (ServiceTrade retries, and delivers some twice), so the publisher
// remembers the ids it published lately and sends a request holding one of them on its
// own, event by event, where a duplicate costs nothing.
type publisher struct {
	js          jetstream.JetStream
	metrics     *metrics
	log         zerolog.Logger
	maxEvents   int // most events in one atomic batch; ≤ 1 publishes every event on its own
	maxBytes    int // most bytes in one atomic batch (a first request is taken whatever its size)
	concurrency int // most batches in flight
	seen        *seenIDs
	avail       *availability

	mu      sync.Mutex
	pending []*commitRequest
	active  int // goroutines draining pending
}

// newPublisher returns the publisher of cfg (defaults set), counting into m.
func newPublisher(cfg Config, m *metrics) *publisher {
	return &publisher{js: cfg.JetStream, metrics: m, log: cfg.Logger,
		maxEvents: cfg.CommitMaxEvents, maxBytes: maxBatchBytes, concurrency: cfg.CommitConcurrency,
		seen: newSeenIDs(seenPerGeneration), avail: newAvailability(cfg.UnavailableAfter, cfg.Logger, m.unavailable)}
}

// commitRequest is one request's events waiting for a batch.
type commitRequest struct {
	ctx   context.Context
	msgs  []event.Message
	bytes int               // the msgs' sizes summed
	done  chan commitResult // buffered: the committer never blocks on a request that left
}

type commitResult struct {
	res publishResult
	err error
	// alone asks the request to publish its events one by one: its batch was refused as a
	// whole, e.g. because it held an event JetStream had already stored.
	alone bool
}

// publish persists msgs, each with its dedup id as Nats-Msg-Id, and returns once every
// one is acknowledged. A message larger than the server or the stream takes is
// errEventTooLarge. Otherwise it returns an error matching errNotPersisted unless every message
// was acknowledged before ctx ended; the messages that were stored stay stored and the
// sender's retry, with the same ids, is deduplicated by JetStream.
func (p *publisher) publish(ctx context.Context, tenant, source string, msgs []event.Message) (publishResult, error) {
	if !p.js.Conn().IsConnected() {
		return publishResult{}, notPersisted(errors.New("not connected to NATS"))
	}
	// A message over the server's limit would be refused on every retry; say so now. An
	// event must also leave room under the limit for its dead letter's provenance, or a
	// consumer that cannot apply it could never dead-letter it.
	limit := p.js.Conn().MaxPayload() - event.DeadLetterReserve
	for _, m := range msgs {
		if size := int64(batchSize(m)); size > limit {
			return publishResult{}, fmt.Errorf("%w: an event of %d bytes, NATS takes at most %d with %d kept free for a dead letter",
				errEventTooLarge, size, limit+event.DeadLetterReserve, event.DeadLetterReserve)
		}
	}
	probe, err := p.avail.admit(time.Now())
	if err != nil {
		return publishResult{}, notPersisted(err)
	}
	ctx, done := p.avail.watch(ctx, probe)
	defer done()
	start := time.Now()
	res, err := p.persist(ctx, msgs)
	if err != nil {
		return res, err
	}
	p.metrics.published(tenant, source, res, time.Since(start))
	return res, nil
}

func (p *publisher) persist(ctx context.Context, msgs []event.Message) (publishResult, error) {
	if len(msgs) == 0 {
		return publishResult{}, nil // a delivery without items: nothing to store
	}
	if p.maxEvents <= 1 || len(msgs) > p.maxEvents {
		return p.publishEach(ctx, msgs)
	}
	if p.seen.addAll(msgs) {
		p.metrics.fallback("seen")
		return p.publishEach(ctx, msgs)
	}
	req := &commitRequest{ctx: ctx, msgs: msgs, done: make(chan commitResult, 1)}
	for _, m := range msgs {
		req.bytes += batchSize(m)
	}
	p.enqueue(req)
	select {
	case r := <-req.done:
		if r.alone {
			return p.publishEach(ctx, msgs)
		}
		return r.res, r.err
	case <-ctx.Done():
		return publishResult{}, notPersisted(context.Cause(ctx))
	}
}

// enqueue adds req to the next batch and starts a committer if fewer than concurrency run.
func (p *publisher) enqueue(req *commitRequest) {
	p.mu.Lock()
	p.pending = append(p.pending, req)
	start := p.active < p.concurrency
	if start {
		p.active++
	}
	p.mu.Unlock()
	if start {
		go p.commitPending()
	}
}

// commitPending commits batches of pending requests until none are left.
func (p *publisher) commitPending() {
	for {
		p.mu.Lock()
		batch := p.takeBatchLocked()
		if len(batch) == 0 {
			p.active--
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		p.commit(batch)
	}
}

// takeBatchLocked removes the oldest pending requests whose events fit in one batch, by
// count and by bytes; the first is always taken, as persist sends requests with more
// events than a batch holds on their own.
func (p *publisher) takeBatchLocked() []*commitRequest {
	n, events, bytes := 0, 0, 0
	for ; n < len(p.pending); n++ {
		r := p.pending[n]
		if n > 0 && (events+len(r.msgs) > p.maxEvents || bytes+r.bytes > p.maxBytes) {
			break
		}
		events, bytes = events+len(r.msgs), bytes+r.bytes
	}
	batch := p.pending[:n:n]
	p.pending = p.pending[n:]
	if len(p.pending) == 0 {
		p.pending = nil // let the old array go
	}
	return batch
}

// commit publishes the events of batch's requests that are still waiting as one atomic
// batch and answers each request.
func (p *publisher) commit(batch []*commitRequest) {
	live := batch[:0]
	var msgs []*nats.Msg
	deadline := time.Now()
	for _, r := range batch {
		if r.ctx.Err() != nil {
			continue // answered 503 already; its sender retries
		}
		live = append(live, r)
		for _, m := range r.msgs {
			msgs = append(msgs, m.NATS())
		}
		// The batch may take as long as its most patient request.
		d, ok := r.ctx.Deadline()
		if !ok {
			d = time.Now().Add(4 * time.Second)
		}
		if d.After(deadline) {
			deadline = d
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	// Nobody waits for a batch whose every request has been answered (its deadline passed,
	// or JetStream stalled and the requests were answered 503): stop waiting for it too,
	// so the next batch — the probe that finds JetStream storing again — is not held up.
	var waiting atomic.Int32
	waiting.Store(int32(len(live)))
	for _, r := range live {
		stop := context.AfterFunc(r.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	p.metrics.batch(len(msgs))
	if len(msgs) == 1 {
		res, err := p.publishEach(ctx, live[0].msgs)
		live[0].done <- commitResult{res: res, err: err}
		return
	}
	// No flow control: the batch is small and the commit's answer says whether the server
	// took it; waiting for the first message's ack would double the round trips.
	_, err := jetstreamext.PublishMsgBatch(ctx, p.js, msgs, jetstreamext.BatchFlowControl{})
	var apiErr *jetstream.APIError
	refused := errors.As(err, &apiErr)
	if refused {
		code := strconv.Itoa(int(apiErr.ErrorCode))
		p.metrics.fallback(code)
		ev := p.log.Warn()
		if apiErr.ErrorCode == jsErrCodeBatchHasDuplicate {
			ev = p.log.Debug() // an old event repeated: expected now and then
		}
		ev.Err(err).Int("events", len(msgs)).Msg("atomic batch refused; its events are published one by one")
	}
	if err == nil {
		p.avail.acked()
	}
	for _, r := range live {
		switch {
		case err == nil:
			r.done <- commitResult{res: publishResult{Stored: len(r.msgs)}}
		case refused:
			// The server refused the batch (a duplicate message id, too many batches in
			// flight, atomic publish disabled, storage full, …). Publishing each event
			// alone, deduplicated, says which were stored, which were duplicates and which
			// failed.
			r.done <- commitResult{alone: true}
		default:
			r.done <- commitResult{err: notPersisted(err)}
		}
	}
}

// jsErrCodeBatchHasDuplicate is nats-server's "atomic publish batch contains duplicate
// message id"; nats.go names no constant for it.
const jsErrCodeBatchHasDuplicate = 10201

// publishEach sends every message asynchronously and waits for all acknowledgements
// until ctx ends.
func (p *publisher) publishEach(ctx context.Context, msgs []event.Message) (publishResult, error) {
	var res publishResult
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := p.js.PublishMsgAsync(m.NATS(), jetstream.WithStallWait(remaining(ctx)))
		if err != nil {
			p.avail.refused(err)
			return res, notPersisted(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			p.avail.acked()
			if ack.Duplicate {
				res.Duplicates++
			} else {
				res.Stored++
			}
		case err := <-f.Err():
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum {
				return res, fmt.Errorf("%w: over the stream's max_msg_size", errEventTooLarge)
			}
			p.avail.refused(err)
			return res, notPersisted(err)
		case <-ctx.Done():
			return res, notPersisted(context.Cause(ctx))
		}
	}
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
