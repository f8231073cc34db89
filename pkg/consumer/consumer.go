package consumer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/tracing"
	"github.com/fieldstream/fieldstream/streams"
)

// Config describes a durable consumer. Name and FilterSubjects are required; every other
// zero field takes the default in its comment.
type Config struct {
	// Stream to consume (default EVENTS).
	Stream string
	// DeadLetterStream holds dead letters (default DLQ), and their redrives on
	// redrive.<Name>.<original subject>, which NewPipeline reads.
	DeadLetterStream string
	// Name of the durable consumer, shared by every replica of the service.
	Name        string
	Description string
	// FilterSubjects select the events, e.g. events.*.asset.>.
	FilterSubjects []string
	// DeliverPolicy applies when the durable is first created (default: all).
	DeliverPolicy jetstream.DeliverPolicy
	// AckWait is how long JetStream waits for a verdict before redelivering (default 30 s).
	AckWait time.Duration
	// MaxDeliver is how many deliveries a message gets before it is dead-lettered as
	// exhausted (default 10).
	MaxDeliver int
	// MaxAckPending bounds the messages delivered but not yet acknowledged across all
	// replicas (default 1000).
	MaxAckPending int
	// BatchSize is the most messages handed to the handler at once (default 100), and
	// BatchLinger how long a batch waits to fill once it has a message (default 5 ms).
	BatchSize   int
	BatchLinger time.Duration
	// LedgerWrites is how the ledger writes a batch's claims (default LedgerAtomic).
	LedgerWrites LedgerWrites
	// BatchesInFlight is how many batches a process handles at once (default 2): while
	// one waits for the ledger or the downstream system, the next is read and decoded.
	// Batches in flight never work on one entity at once (see Idempotent).
	BatchesInFlight int
	// NakDelay is the redelivery delay after the first failed delivery (default 1 s); it
	// doubles with every further delivery up to NakDelayMax (default 2 min).
	NakDelay    time.Duration
	NakDelayMax time.Duration
	Logger      zerolog.Logger
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = streams.Events
	}
	if c.DeadLetterStream == "" {
		c.DeadLetterStream = streams.DeadLetters
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 10
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 1000
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.BatchLinger == 0 {
		c.BatchLinger = 5 * time.Millisecond
	}
	if c.BatchesInFlight == 0 {
		c.BatchesInFlight = 2
	}
	if c.LedgerWrites == "" {
		c.LedgerWrites = LedgerAtomic
	}
	if c.NakDelay == 0 {
		c.NakDelay = time.Second
	}
	if c.NakDelayMax == 0 {
		c.NakDelayMax = 2 * time.Minute
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case !validName(c.Name):
		return fmt.Errorf("consumer: name %q: want letters, digits, '-' or '_'", c.Name)
	case len(c.FilterSubjects) == 0:
		return errors.New("consumer: at least one filter subject is required")
	case c.AckWait < 0, c.MaxDeliver < 0, c.MaxAckPending < 0, c.BatchSize < 0, c.BatchLinger < 0, c.NakDelay < 0, c.BatchesInFlight < 0:
		return errors.New("consumer: negative setting")
	case c.MaxDeliver == 1:
		return errors.New("consumer: MaxDeliver 1 leaves no room for a retry")
	case c.LedgerWrites != "" && c.LedgerWrites != LedgerAtomic && c.LedgerWrites != LedgerPipelined:
		return fmt.Errorf("consumer: ledger writes %q: want %s or %s", c.LedgerWrites, LedgerAtomic, LedgerPipelined)
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Consumer runs a BatchHandler over a durable JetStream consumer: a service's live
// consumer, one of its replays, or its redrive consumer.
type Consumer struct {
	cfg     Config
	js      jetstream.JetStream
	cons    jetstream.Consumer
	handler BatchHandler
	src     source
	limiter *rate.Limiter // replays run at their requested rate; nil: unbounded
}

// New creates the durable consumer, or updates it to cfg, and returns a Consumer that runs
// handler over it. The handler receives every delivery with its metadata and ID read but
// its envelope not decoded (Message.Event is the zero value): a handler that reads Event is
// wrapped in Decode, as in Chain(h, Decode()). NewPipeline does so after its Idempotent
// layer, which needs only the ID.
func New(ctx context.Context, js jetstream.JetStream, cfg Config, handler BatchHandler) (*Consumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:        cfg.Name,
		Description:    cfg.Description,
		FilterSubjects: cfg.FilterSubjects,
		DeliverPolicy:  cfg.DeliverPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     cfg.MaxDeliver,
		MaxAckPending:  cfg.MaxAckPending,
		Metadata:       map[string]string{"fieldstream.dev/consumer": cfg.Name},
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", cfg.Name, cfg.Stream, err)
	}
	return &Consumer{cfg: cfg, js: js, cons: cons, handler: handler, src: source{name: cfg.Name}}, nil
}

// newRedrive creates or updates the durable consumer on the dead-letter stream through which
// the consumer of cfg reads its redriven dead letters, and returns it running handler.
func newRedrive(ctx context.Context, js jetstream.JetStream, cfg Config, handler BatchHandler) (*Consumer, error) {
	name := RedriveName(cfg.Name)
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.DeadLetterStream, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "redriven dead letters of " + cfg.Name,
		FilterSubject: RedriveSubject(cfg.Name, ">"),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
		Metadata:      map[string]string{"fieldstream.dev/redrive-of": cfg.Name},
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", name, cfg.DeadLetterStream, err)
	}
	return &Consumer{cfg: cfg, js: js, cons: cons, handler: handler, src: source{name: name, redrive: true}}, nil
}

// newReplay returns a Consumer running handler over the existing replay consumer cons of
// window w (see ReplayWindow): deliveries past the window's end are acknowledged and never
// handled, and a rate, if w sets one, bounds the events handled per second.
func newReplay(js jetstream.JetStream, cfg Config, cons jetstream.Consumer, w ReplayWindow, handler BatchHandler) *Consumer {
	c := &Consumer{cfg: cfg, js: js, cons: cons, handler: handler, src: source{name: cons.CachedInfo().Name, replay: &w}}
	if w.Rate > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(w.Rate), 1)
		// At most about a second of events waits for its turn, well inside AckWait.
		c.cfg.BatchSize = max(1, min(c.cfg.BatchSize, int(w.Rate)))
	}
	return c
}

// Run consumes until ctx ends, then drains: it stops pulling, hands back (Nak) what it had
// pulled but not started, lets the batches in hand finish, and returns nil. Every message
// is acknowledged only after it was applied or dead-lettered; a message whose handler
// failed transiently is negatively acknowledged with a delay that grows with its
// deliveries. Up to BatchesInFlight batches are handled at once.
func (c *Consumer) Run(ctx context.Context) error {
	in := make(chan jetstream.Msg, c.cfg.BatchSize)
	cc, err := c.cons.Consume(func(m jetstream.Msg) { in <- m },
		jetstream.PullMaxMessages((c.cfg.BatchesInFlight+1)*c.cfg.BatchSize),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.cfg.Logger.Debug().Err(err).Str("consumer", c.src.name).Msg("consume")
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.src.name, err)
	}
	slots := make(chan struct{}, c.cfg.BatchesInFlight)
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	for {
		select {
		case <-ctx.Done():
			c.drain(cc, in)
			return nil
		case m := <-in:
			batch := c.fill(ctx, append(make([]jetstream.Msg, 0, c.cfg.BatchSize), m), in)
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				for _, m := range batch {
					_ = m.Nak() // not started: handed back at once
				}
				c.drain(cc, in)
				return nil
			}
			inFlight.Go(func() {
				defer func() { <-slots }()
				c.process(ctx, batch)
			})
		}
	}
}

// fill adds messages that arrive within BatchLinger, up to BatchSize.
func (c *Consumer) fill(ctx context.Context, batch []jetstream.Msg, in <-chan jetstream.Msg) []jetstream.Msg {
	t := time.NewTimer(c.cfg.BatchLinger)
	defer t.Stop()
	for len(batch) < c.cfg.BatchSize {
		select {
		case m := <-in:
			batch = append(batch, m)
		case <-t.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// drain stops pulling and hands every buffered message back at once, so another replica
// (or the next start) takes it without waiting for AckWait.
func (c *Consumer) drain(cc jetstream.ConsumeContext, in chan jetstream.Msg) {
	cc.Drain()
	for {
		select {
		case m := <-in:
			_ = m.Nak()
		case <-cc.Closed():
			for {
				select {
				case m := <-in:
					_ = m.Nak()
				default:
					return
				}
			}
		}
	}
}

func (c *Consumer) process(ctx context.Context, raw []jetstream.Msg) {
	batch := make([]*Message, 0, len(raw))
	for _, msg := range raw {
		m, err := c.src.read(msg)
		if err != nil {
			c.cfg.Logger.Warn().Err(err).Str("consumer", c.src.name).Str("subject", msg.Subject()).Msg("not a JetStream delivery")
			_ = msg.TermWithReason("no metadata: " + truncate(err.Error(), 180))
			continue
		}
		if w := c.src.replay; w != nil && m.Meta.Sequence.Stream > w.UntilSeq {
			_ = msg.Ack() // past the window: the live consumer's, not this replay's
			continue
		}
		batch = append(batch, m)
	}
	if len(batch) == 0 {
		return
	}
	if c.limiter != nil {
		for range batch {
			if c.limiter.Wait(ctx) != nil {
				for _, m := range batch {
					_ = m.Msg.Nak() // stopping: not started, handed back at once
				}
				return
			}
		}
	}
	hctx, endBatch := c.startSpans(ctx, batch)
	errs := oneResultEach(c.handler(hctx, batch), len(batch))
	forEach(len(batch), func(i int) { c.settle(ctx, batch[i], errs[i]) })
	endBatch(errs)
}

// startSpans starts each message's processing span, a child of the trace context its
// headers carry, and returns the context the handler gets for the batch: the message's own
// for a batch of one, else a batch span linked to every message's. end ends them all with
// the messages' outcomes.
func (c *Consumer) startSpans(ctx context.Context, batch []*Message) (context.Context, func(errs []error)) {
	tracer := tracing.Tracer()
	links := make([]trace.Link, len(batch))
	for i, m := range batch {
		pctx := tracing.Extract(context.Background(), m.Msg.Headers())
		attrs := []attribute.KeyValue{attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", m.Meta.Stream),
			attribute.String("messaging.consumer.group.name", c.cfg.Name), attribute.String("fieldstream.subject", m.Subject()),
			attribute.Int64("fieldstream.stream_sequence", int64(m.Meta.Sequence.Stream)), attribute.Int64("fieldstream.delivery", int64(m.Meta.NumDelivered))}
		if m.Replay != nil {
			attrs = append(attrs, attribute.Bool("fieldstream.replay", true), attribute.Int64("fieldstream.redrive_of", int64(m.Replay.RedriveOf)))
		}
		_, m.span = tracer.Start(pctx, c.cfg.Name+" process", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
		links[i] = trace.Link{SpanContext: m.span.SpanContext()}
	}
	hctx := batch[0].TraceContext(ctx)
	var batchSpan trace.Span
	if len(batch) > 1 {
		hctx, batchSpan = tracer.Start(ctx, c.cfg.Name+" process batch", trace.WithNewRoot(), trace.WithLinks(links...),
			trace.WithAttributes(attribute.Int("messaging.batch.message_count", len(batch))))
	}
	return hctx, func(errs []error) {
		for i, m := range batch {
			switch err := errs[i]; {
			case err == nil:
				m.span.SetAttributes(attribute.String("fieldstream.outcome", "applied"))
			case skipped(err):
				m.span.SetAttributes(attribute.String("fieldstream.outcome", "skipped"))
			default:
				m.span.SetStatus(codes.Error, truncate(err.Error(), 200))
			}
			m.span.End()
		}
		if batchSpan != nil {
			batchSpan.End()
		}
	}
}

// forEach runs f(0..n-1) on up to 32 goroutines and waits for them.
func forEach(n int, f func(i int)) {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// settle gives JetStream the verdict on one message. An applied or skipped message is
// acknowledged without waiting for the server's confirmation: the ledger recorded it, so a
// redelivery would be skipped. A redriven one is confirmed first, since its dead letter is
// removed next.
func (c *Consumer) settle(ctx context.Context, m *Message, err error) {
	log := c.cfg.Logger
	redriven := m.Replay != nil && m.Replay.RedriveOf != 0
	switch {
	case err == nil || skipped(err):
		if !redriven {
			_ = m.Msg.Ack()
			return
		}
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if aerr := m.Msg.DoubleAck(actx); aerr != nil {
			log.Warn().Err(aerr).Str("consumer", c.src.name).Uint64("seq", m.Meta.Sequence.Stream).Msg("ack not confirmed")
			return
		}
		c.redriveDone(m)
	case errors.Is(err, ErrDeadLettered):
		_ = m.Msg.TermWithReason(truncate(err.Error(), 200))
		if redriven {
			c.redriveDone(m)
		}
	case ctx.Err() != nil:
		_ = m.Msg.Nak() // shutting down: not a failure, give it back at once
	default:
		delay := c.nakDelay(m.Meta.NumDelivered)
		if ra := failure.RetryAfterOf(err); ra > delay {
			delay = ra
		}
		log.Info().Err(err).Str("consumer", c.src.name).Uint64("seq", m.Meta.Sequence.Stream).
			Uint64("delivery", m.Meta.NumDelivered).Dur("redeliver_in", delay).Msg("apply failed; will retry")
		_ = m.Msg.NakWithDelay(delay)
	}
}

// redriveDone removes, once the consumer has settled a redriven message (applied, or
// dead-lettered anew under a fresh entry), the dead letter it re-delivered and the redrive
// message itself.
func (c *Consumer) redriveDone(m *Message) {
	removeRedrive(c.js, c.cfg.DeadLetterStream, m.Replay.RedriveOf, m.Meta.Sequence.Stream, c.cfg.Logger)
}

// removeRedrive deletes dead letter letter and its redrive message redrive from the
// dead-letter stream; one already gone is no error.
func removeRedrive(js jetstream.JetStream, stream string, letter, redrive uint64, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	for _, seq := range []uint64{letter, redrive} {
		if err == nil && seq != 0 {
			if err = s.DeleteMsg(ctx, seq); errors.Is(err, jetstream.ErrMsgNotFound) {
				err = nil
			}
		}
	}
	if err != nil {
		log.Warn().Err(err).Uint64("dlq_seq", letter).Uint64("redrive_seq", redrive).Msg("redriven dead letter not removed")
	}
}

func (c *Consumer) nakDelay(delivered uint64) time.Duration {
	d := c.cfg.NakDelay
	for i := uint64(1); i < delivered && d < c.cfg.NakDelayMax; i++ {
		d *= 2
	}
	return min(d, c.cfg.NakDelayMax)
}

// RegisterFlags binds c's tunables to fs with their defaults, so every consumer service
// offers the same settings under the same names.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.setDefaults()
	fs.DurationVar(&c.AckWait, "ack-wait", c.AckWait, "time JetStream waits for a verdict before redelivering")
	fs.IntVar(&c.MaxDeliver, "max-deliver", c.MaxDeliver, "deliveries before a failing event is dead-lettered as exhausted")
	fs.IntVar(&c.MaxAckPending, "max-ack-pending", c.MaxAckPending, "events in flight across all replicas")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "most events handed to the sink at once")
	fs.DurationVar(&c.BatchLinger, "batch-linger", c.BatchLinger, "how long a batch waits to fill")
	fs.IntVar(&c.BatchesInFlight, "batches-in-flight", c.BatchesInFlight, "batches handled at once; never two on one entity")
	fs.Var(&c.LedgerWrites, "ledger-writes", "how the ledger writes a batch's claims: atomic (one atomic batch: for a server that fsyncs every write, as in production) or pipelined (one by one: faster on nats-server's default fsync every two minutes)")
	fs.DurationVar(&c.NakDelay, "nak-delay", c.NakDelay, "first redelivery delay after a failure; doubles per delivery")
	fs.DurationVar(&c.NakDelayMax, "nak-delay-max", c.NakDelayMax, "longest redelivery delay")
}
