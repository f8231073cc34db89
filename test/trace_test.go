package test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/services/simulator"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/test/harness"
)

// withTraceparent sends every request with the W3C trace context of a sender that traces
// its webhooks.
type withTraceparent struct{ traceparent string }

func (w withTraceparent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if w.traceparent != "" {
		r.Header.Set("traceparent", w.traceparent)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestTraceRunsFromWebhookToSink: one trace runs from the webhook through the stream and
// the consumer to the sink. A ServiceTrade delivery sent with a traceparent is recorded
// (OpenTelemetry SDK's in-memory recorder) as the gateway's server span, a child of the
// sender's; the EVENTS publish span under it; each event's workorders processing span
// under that, read from the message's NATS headers; and the calls to ServiceTrade and to
// the work-order system under that. A delivery without trace context starts a trace of
// its own at the gateway.
func TestTraceRunsFromWebhookToSink(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev); _ = tp.Shutdown(context.Background()) })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	env, err := harness.New(ctx, js, simulator.StackConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if err := env.StartConsumer(ctx, "workorders", consumer.Config{}, consumer.PipelineOptions{}, nil); err != nil {
		t.Fatal(err)
	}

	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	sender, err := stsim.NewSender(stsim.SenderConfig{URL: env.Hook, Client: &http.Client{Transport: withTraceparent{traceparent}},
		DuplicateRate: stsim.Never, ReorderRate: stsim.Never}, env.Stack.Account)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []stsim.Change
	for len(jobs) < 2 { // the account's next changes, until two are jobs': the work-order consumer's
		for _, c := range env.Stack.Account.NextChanges(10, time.Now()) {
			if c.Entity.Type == stsim.TypeJob {
				jobs = append(jobs, c)
			}
		}
	}
	if r := sender.Deliver(ctx, stsim.NewDelivery(jobs[:1], time.Now())); r.Status != http.StatusOK {
		t.Fatalf("delivery: HTTP %d, %v", r.Status, r.Err)
	}
	sendersTrace, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sendersSpan, _ := trace.SpanIDFromHex("00f067aa0ba902b7")

	var gw, pub, proc, sink sdktrace.ReadOnlySpan
	natstest.Eventually(t, 30*time.Second, "the sink call's span", func() bool {
		gw, pub, proc, sink = nil, nil, nil, nil
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() != sendersTrace {
				continue
			}
			switch {
			case s.Name() == "webhook servicetrade":
				gw = s
			case s.Name() == "EVENTS publish":
				pub = s
			case s.Name() == "workorders process":
				proc = s
			case strings.HasSuffix(s.Name(), " wosystem"):
				sink = s
			}
		}
		return gw != nil && pub != nil && proc != nil && sink != nil
	})
	chain := []struct {
		what   string
		span   sdktrace.ReadOnlySpan
		parent trace.SpanID
		kind   trace.SpanKind
	}{
		{"gateway", gw, sendersSpan, trace.SpanKindServer},
		{"EVENTS publish", pub, gw.SpanContext().SpanID(), trace.SpanKindProducer},
		{"workorders process", proc, pub.SpanContext().SpanID(), trace.SpanKindConsumer},
		{"work-order system call", sink, proc.SpanContext().SpanID(), trace.SpanKindClient},
	}
	for _, c := range chain {
		if c.span.Parent().SpanID() != c.parent || c.span.SpanKind() != c.kind {
			t.Errorf("%s span %q: parent %s kind %s, want parent %s kind %s", c.what, c.span.Name(), c.span.Parent().SpanID(), c.span.SpanKind(), c.parent, c.kind)
		}
	}
	fetched := false
	for _, s := range rec.Ended() {
		fetched = fetched || (s.Name() == "GET servicetrade" && s.Parent().SpanID() == proc.SpanContext().SpanID())
	}
	if !fetched {
		t.Error("no ServiceTrade call in the event's trace")
	}

	// No trace context from the sender: the gateway starts one, and the event carries it.
	plain, err := stsim.NewSender(stsim.SenderConfig{URL: env.Hook, Client: &http.Client{Transport: withTraceparent{}},
		DuplicateRate: stsim.Never, ReorderRate: stsim.Never}, env.Stack.Account)
	if err != nil {
		t.Fatal(err)
	}
	if r := plain.Deliver(ctx, stsim.NewDelivery(jobs[len(jobs)-1:], time.Now().Add(time.Second))); r.Status != http.StatusOK {
		t.Fatalf("delivery: HTTP %d, %v", r.Status, r.Err)
	}
	natstest.Eventually(t, 30*time.Second, "a new trace from the gateway to the consumer", func() bool {
		roots := map[trace.TraceID]bool{}
		for _, s := range rec.Ended() {
			if s.Name() == "webhook servicetrade" && !s.Parent().IsValid() {
				roots[s.SpanContext().TraceID()] = true
			}
		}
		for _, s := range rec.Ended() {
			if s.Name() == "workorders process" && roots[s.SpanContext().TraceID()] {
				return true
			}
		}
		return false
	})
}
