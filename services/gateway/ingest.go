package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/pkg/tracing"
	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/streams"
)

// accepted is the body of a 2xx answer.
type accepted struct {
	Events int `json:"events"`
	publishResult
}

func (g *Gateway) serveServiceTrade(w http.ResponseWriter, r *http.Request) {
	g.serve(w, r, event.SourceServiceTrade, g.admitServiceTrade, g.ingestServiceTrade)
}

func (g *Gateway) serveStandard(w http.ResponseWriter, r *http.Request) {
	g.serve(w, r, event.SourceStandard, g.admitStandard, g.ingestStandard)
}

// serveNoHook answers, as JSON like every other refusal, a request under /hooks/ that no
// webhook route takes: another method than POST, or a path without its tenant or token.
func (g *Gateway) serveNoHook(w http.ResponseWriter, r *http.Request) {
	err := errNoHook
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		err = errNotPost
	}
	code, status := writeError(w, err)
	g.metrics.request("unknown", "unknown", code, status)
}

// delivery is one webhook request on its way in: its tenant, when it arrived, and what the
// checks before the body was read found.
type delivery struct {
	*http.Request
	tenant   *tenant.Tenant
	received time.Time
	standard webhook.StandardHeaders // Standard Webhooks: its headers, checked by admitStandard
}

// admitFunc refuses what the path and headers alone show to be refused, before the body
// is read: the checks are ordered cheapest first, so a hostile request costs no more than
// it must.
type admitFunc func(d *delivery) error

// ingestFunc turns one admitted request and its body into persisted events.
type ingestFunc func(ctx context.Context, d *delivery, body []byte) (accepted, error)

// serve runs the steps every webhook shares — trace, tenant, admission, body limit,
// deadline, answer, metrics — around ingest.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, source string, admit admitFunc, ingest ingestFunc) {
	// The sender's trace, if its request carries one (traceparent); a new root otherwise.
	ctx, span := tracing.Tracer().Start(tracing.ExtractHTTP(r.Context(), r.Header), "webhook "+source,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("fieldstream.source", source),
			attribute.String("http.request.method", r.Method), attribute.String("http.route", routeOf(source))))
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, g.cfg.AnswerWithin)
	defer cancel()
	label := "unknown"
	res, err := func() (accepted, error) {
		t, ok := g.cfg.Tenants.Lookup(r.PathValue("tenant"))
		if !ok {
			return accepted{}, errUnknownTenant
		}
		label = t.Name
		span.SetAttributes(attribute.String("fieldstream.tenant", t.Name))
		if r.ContentLength > g.cfg.MaxBodyBytes {
			return accepted{}, fmt.Errorf("%w: %d bytes declared, limit %d", errBodyTooLarge, r.ContentLength, g.cfg.MaxBodyBytes)
		}
		d := &delivery{Request: r, tenant: t, received: g.cfg.Now()}
		if err := admit(d); err != nil {
			return accepted{}, err
		}
		buf, err := g.readBody(w, r)
		defer bodies.Put(buf)
		if err != nil {
			return accepted{}, err
		}
		return ingest(ctx, d, buf.Bytes())
	}()
	if err != nil {
		code, status := writeError(w, err)
		g.metrics.request(label, source, code, status)
		span.SetAttributes(attribute.Int("http.response.status_code", status), attribute.String("fieldstream.outcome", code))
		if status >= 500 {
			span.SetStatus(codes.Error, code)
		}
		ev := g.cfg.Logger.Debug()
		if status >= 500 {
			ev = g.cfg.Logger.Warn()
		}
		ev.Err(err).Str("tenant", label).Str("source", source).Str("code", code).Msg("webhook refused")
		return
	}
	writeJSON(w, http.StatusOK, res)
	g.metrics.request(label, source, "ok", http.StatusOK)
	span.SetAttributes(attribute.Int("http.response.status_code", http.StatusOK), attribute.Int("fieldstream.events", res.Events),
		attribute.Int("fieldstream.stored", res.Stored), attribute.Int("fieldstream.duplicates", res.Duplicates))
}

var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads at most MaxBodyBytes; a larger body is errBodyTooLarge without reading
// past the limit (serve refuses a larger declared length before). The buffer goes back to bodies when the caller is done.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, error) {
	buf := bodies.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return buf, fmt.Errorf("%w: limit %d bytes", errBodyTooLarge, g.cfg.MaxBodyBytes)
	case err != nil:
		return buf, fmt.Errorf("%w: %v", errBodyRead, err)
	}
	return buf, nil
}

// admitServiceTrade checks the hook URL's token, ServiceTrade's only credential.
func (g *Gateway) admitServiceTrade(d *delivery) error {
	if d.tenant.ServiceTradeToken == "" {
		return errSourceDisabled
	}
	return webhook.CheckToken(d.PathValue("token"), d.tenant.ServiceTradeToken)
}

func (g *Gateway) ingestServiceTrade(ctx context.Context, d *delivery, body []byte) (accepted, error) {
	t := d.tenant
	parsed, err := webhook.ParseServiceTrade(body)
	if err != nil {
		return accepted{}, err
	}
	// ServiceTrade discards a delivery answered 429 like any 4xx; 503 makes it retry.
	if err := g.takeRate(t, len(parsed.Items), d.received, errThrottled); err != nil {
		return accepted{}, err
	}
	msgs := make([]event.Message, 0, len(parsed.Items))
	for _, it := range parsed.Items {
		ce := event.New(event.SourceServiceTrade, t.Name, it.Entity, strconv.FormatInt(it.EntityID, 10), it.Action,
			it.DedupID(t.Name), it.Time, d.received, it.Raw)
		ce.DeliveryID = parsed.MessageID
		m, err := newMessage(&ce)
		if err != nil {
			return accepted{}, err
		}
		msgs = append(msgs, m)
	}
	return g.publish(ctx, t, event.SourceServiceTrade, msgs)
}

// admitStandard reads the Standard Webhooks headers (the spec's or Svix's) and checks all
// that needs neither body nor secret: the timestamp's tolerance and the signatures' form
// and number. The body's MAC, one per tenant secret, comes after.
func (g *Gateway) admitStandard(d *delivery) error {
	if len(d.tenant.StandardSecrets) == 0 {
		return errMissingTenantKey
	}
	h, err := webhook.ReadStandardHeaders(d.Header)
	if err != nil {
		return err
	}
	d.standard = h
	return webhook.CheckStandardHeaders(h, d.received, g.cfg.Tolerance)
}

func (g *Gateway) ingestStandard(ctx context.Context, d *delivery, body []byte) (accepted, error) {
	t, h := d.tenant, d.standard
	sent, err := webhook.VerifyStandard(t.StandardSecrets, h, body, d.received, g.cfg.Tolerance)
	if err != nil {
		return accepted{}, err
	}
	ev, err := webhook.ParseStandard(body)
	if err != nil {
		return accepted{}, err
	}
	if err := g.takeRate(t, 1, d.received, errRateLimited); err != nil {
		return accepted{}, err
	}
	at := ev.Time
	if at.IsZero() {
		at = sent
	}
	ce := event.New(event.SourceStandard, t.Name, ev.Entity, ev.EntityID, ev.Action,
		webhook.StandardDedupID(t.Name, h.ID), at, d.received, ev.Data)
	ce.DeliveryID = h.ID
	m, err := newMessage(&ce)
	if err != nil {
		return accepted{}, err
	}
	return g.publish(ctx, t, event.SourceStandard, []event.Message{m})
}

// takeRate takes n events from t's rate limit, or returns over (errRateLimited or
// errThrottled) with the time until they would fit as its Retry-After.
func (g *Gateway) takeRate(t *tenant.Tenant, n int, now time.Time, over error) error {
	if wait, ok := g.limits.take(t, n, now); !ok {
		return failure.Transient(fmt.Errorf("%w: %d events", over, n), wait)
	}
	return nil
}

func (g *Gateway) publish(ctx context.Context, t *tenant.Tenant, source string, msgs []event.Message) (accepted, error) {
	// The stream hop of the trace: the events carry this span's context in their headers,
	// and their consumers continue from it.
	ctx, span := tracing.Tracer().Start(ctx, streams.Events+" publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", streams.Events),
			attribute.Int("messaging.batch.message_count", len(msgs))))
	defer span.End()
	fields := tracing.Fields(ctx)
	for i := range msgs {
		msgs[i].Trace = fields
	}
	res, err := g.pub.publish(ctx, t.Name, source, msgs)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return accepted{}, failure.Transient(err, g.cfg.RetryAfter)
	}
	return accepted{Events: len(msgs), publishResult: res}, nil
}

// routeOf is the route pattern of a webhook source, for spans.
func routeOf(source string) string {
	if source == event.SourceServiceTrade {
		return "/hooks/{tenant}/servicetrade/{token}"
	}
	return "/hooks/{tenant}/standard"
}
