package consumer_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/tracing"
)

// TestDeadLetterAndRedriveCarryTheTrace: a dead letter continues the event's trace from
// the span that gave up on it, and its redrive carries that trace context on to the
// consumer; an event whose processing had no span keeps the trace context it arrived with.
func TestDeadLetterAndRedriveCarryTheTrace(t *testing.T) {
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	for _, withSpan := range []bool{false, true} {
		h := newHarness(t)
		msg := assetEvent("e1", 1, "updated", t0, "")
		msg.Header.Set("traceparent", traceparent)
		m := h.deliver(msg)
		ctx := context.Background()
		want := traceparent
		if withSpan {
			var span trace.Span
			ctx, span = tp.Tracer("test").Start(tracing.Extract(ctx, msg.Header), "assets process")
			sc := span.SpanContext()
			want = "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
			defer span.End()
		}
		handler := func(context.Context, []*consumer.Message) []error { return []error{errRejected} }
		consumer.DeadLetter(consumer.NewDeadLetters(h.js, "assets", 5, nil, zerologNop()))(handler)(ctx, []*consumer.Message{m})
		letters := h.dlq()
		if len(letters) != 1 {
			t.Fatalf("%d dead letters", len(letters))
		}
		if got := letters[0].Header.Get("traceparent"); got != want {
			t.Errorf("span %v: dead letter traceparent %q, want %q", withSpan, got, want)
		}
		redrive, err := consumer.ReadDeadLetter(letters[0].Sequence, letters[0].Subject, letters[0].Header, letters[0].Data).RedriveMsg()
		if err != nil {
			t.Fatal(err)
		}
		if got := redrive.Header.Get("traceparent"); got != want {
			t.Errorf("span %v: redrive traceparent %q, want %q", withSpan, got, want)
		}
	}
}
