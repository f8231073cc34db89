// Package tracing carries W3C trace context (traceparent, tracestate) through fieldstream —
// from an incoming webhook into the event's NATS headers, through the consumer, to every
// sink call's HTTP headers, and with dead letters, replays and redrives, which copy the
// headers they carry — and sets up OpenTelemetry's tracer provider once per process
// (Setup, which pkg/daemon calls): spans are exported over OTLP when the standard OTEL_*
// variables ask for it, and nowhere otherwise.
//
// The tracer provider and propagator are OpenTelemetry's globals (otel.GetTracerProvider),
// so that libraries and tests share them as OpenTelemetry intends.
package tracing

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of fieldstream's spans.
const Name = "github.com/fieldstream/fieldstream"

// propagator is how fieldstream writes and reads trace context: W3C trace context and
// baggage, whatever the global propagator is, so that trace context passes through every
// process, exporting or not.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Tracer returns fieldstream's tracer from the global provider.
func Tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(Name) }

// Exporting reports whether the environment asks for spans to be exported: an OTLP
// endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or
// OTEL_TRACES_EXPORTER is otlp, and OTEL_SDK_DISABLED is not true and OTEL_TRACES_EXPORTER
// not none.
func Exporting(getenv func(string) string) bool {
	exporter := strings.ToLower(getenv("OTEL_TRACES_EXPORTER"))
	switch {
	case strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true"), exporter == "none":
		return false
	case exporter == "otlp":
		return true
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup sets the global propagator to W3C trace context and baggage — always, so that
// trace context passes through a process that exports nothing — and, when Exporting says
// so, a tracer provider that batches spans to the OTLP/HTTP endpoint the standard OTEL_*
// variables name (OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
// OTEL_TRACES_SAMPLER…), its service name service unless OTEL_SERVICE_NAME says otherwise.
// shutdown flushes and stops it; without exporting it does nothing.
func Setup(ctx context.Context, getenv func(string) string, service string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagator)
	if !Exporting(getenv) {
		return func(context.Context) error { return nil }, nil
	}
	if p := getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
		return nil, errors.New("tracing: OTEL_EXPORTER_OTLP_PROTOCOL " + p + ": only http/protobuf is built in")
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", service)))
	if err != nil {
		return nil, err
	}
	if env, err := resource.New(ctx, resource.WithFromEnv()); err == nil { // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
		if merged, err := resource.Merge(res, env); err == nil {
			res = merged
		}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// NATSHeader is a NATS message's headers as an OpenTelemetry carrier. nats.Header looks
// keys up exactly as written (unlike http.Header), and W3C trace context names its headers
// in lower case: Set writes the key as the propagator gives it (traceparent), and Get finds
// it in any case (Traceparent, as a carrier that canonicalizes would have written it).
type NATSHeader nats.Header

// Get implements propagation.TextMapCarrier.
func (h NATSHeader) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Set implements propagation.TextMapCarrier; it replaces the key in any case.
func (h NATSHeader) Set(key, value string) {
	for k := range h {
		if strings.EqualFold(k, key) {
			delete(h, k)
		}
	}
	h[key] = []string{value}
}

// Keys implements propagation.TextMapCarrier.
func (h NATSHeader) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes ctx's trace context into h.
func Inject(ctx context.Context, h nats.Header) {
	propagator.Inject(ctx, NATSHeader(h))
}

// Extract returns ctx with the trace context of h.
func Extract(ctx context.Context, h nats.Header) context.Context {
	return propagator.Extract(ctx, NATSHeader(h))
}

// ExtractHTTP returns ctx with the trace context of an HTTP request's headers.
func ExtractHTTP(ctx context.Context, h http.Header) context.Context {
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Fields returns ctx's trace context as header fields (traceparent, tracestate), empty
// when ctx carries none.
func Fields(ctx context.Context) map[string]string {
	m := propagation.MapCarrier{}
	propagator.Inject(ctx, m)
	return m
}

// StartHTTP starts the client span of req, a call to the system named system, and writes
// its trace context into req's headers. end records the answer's status (0: none) or err
// and ends the span.
func StartHTTP(req *http.Request, system string) (*http.Request, func(status int, err error)) {
	ctx, span := Tracer().Start(req.Context(), req.Method+" "+system, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("server.address", req.URL.Host),
			attribute.String("url.path", req.URL.Path), attribute.String("peer.service", system)))
	req = req.WithContext(ctx)
	propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	return req, func(status int, err error) {
		if status > 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", status))
		}
		if err != nil || status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
			if err != nil {
				span.RecordError(err)
			}
		}
		span.End()
	}
}
