package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldstream/fieldstream/pkg/tracing"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestNATSHeaderCarrier: trace context is written under the W3C names as they are
// (nats.Header looks keys up exactly) and read back in any case.
func TestNATSHeaderCarrier(t *testing.T) {
	for _, key := range []string{"traceparent", "Traceparent", "TRACEPARENT"} {
		t.Run(key, func(t *testing.T) {
			in := nats.Header{key: []string{traceparent}}
			ctx := tracing.Extract(context.Background(), in)
			sc := trace.SpanContextFromContext(ctx)
			if !sc.IsValid() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Fatalf("extracted %v from %v", sc, in)
			}
			out := nats.Header{"Traceparent": []string{"stale"}}
			tracing.Inject(ctx, out)
			if out.Get("traceparent") != traceparent || len(out) != 1 {
				t.Errorf("injected %v, want only traceparent=%s", out, traceparent)
			}
		})
	}
}

// TestStartHTTPCarriesTheTrace: a client call is a child span of the caller's, and its
// request carries that span's traceparent.
func TestStartHTTPCarriesTheTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get("traceparent") }))
	defer srv.Close()

	ctx, parent := tp.Tracer("test").Start(context.Background(), "apply")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/x", nil)
	req, end := tracing.StartHTTP(req, "sink")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	end(resp.StatusCode, nil)
	parent.End()
	spans := rec.Ended()
	if len(spans) != 2 || spans[0].Name() != "PUT sink" || spans[0].Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("spans %v", spans)
	}
	want := "00-" + spans[0].SpanContext().TraceID().String() + "-" + spans[0].SpanContext().SpanID().String() + "-01"
	if h := <-got; h != want {
		t.Errorf("the sink got traceparent %q, want %q", h, want)
	}
}

func TestExporting(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{"exporter otlp", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tracing.Exporting(func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("Exporting = %v, want %v", got, tt.want)
			}
		})
	}
}
