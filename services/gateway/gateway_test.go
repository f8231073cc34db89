package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/services/gateway"
	"github.com/fieldstream/fieldstream/streams"
)

const (
	specSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherSecret = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
	stToken     = "dev-token"
)

// env is one gateway on a fresh embedded JetStream.
type env struct {
	t      testing.TB
	srv    *server.Server
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	dir    *tenant.Directory
	gw     *gateway.Gateway
	url    string
	now    atomic.Int64 // Unix seconds the gateway's clock reads
	client *http.Client
}

type envOption func(*gateway.Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, client: &http.Client{Timeout: 10 * time.Second}}
	e.now.Store(time.Now().Unix())
	e.srv = natstest.RunServer(t)
	_, e.js = natstest.Connect(t, e.srv)
	ctx := context.Background()
	if _, err := streams.Apply(ctx, e.js, streams.Options{}); err != nil {
		t.Fatal(err)
	}
	kv, err := tenant.OpenBucket(ctx, e.js)
	if err != nil {
		t.Fatal(err)
	}
	e.kv = kv
	e.putTenant("demo", tenant.Config{ServiceTradeToken: stToken, StandardSecrets: []string{specSecret}, RatePerSecond: 10000, Burst: 10000})
	dir, err := tenant.Watch(ctx, kv, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Stop() })
	e.dir = dir
	cfg := gateway.Config{JetStream: e.js, Tenants: dir, Now: func() time.Time { return time.Unix(e.now.Load(), 0) }, AnswerWithin: time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	gw, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.gw = gw
	e.serve(gateway.NewHTTPServer("", gw))
	return e
}

// serve starts srv for the gateway on a free loopback port and points e.url at it.
func (e *env) serve(srv *http.Server) {
	hs := httptest.NewUnstartedServer(e.gw)
	hs.Config = srv
	hs.Start()
	e.t.Cleanup(hs.Close)
	e.url = hs.URL
}

// putTenant stores a tenant record and, once the gateway follows the bucket, waits until
// the gateway serves that revision.
func (e *env) putTenant(name string, c tenant.Config) {
	e.t.Helper()
	if err := tenant.Put(context.Background(), e.kv, name, c); err != nil {
		e.t.Fatal(err)
	}
	if e.dir == nil {
		return
	}
	natstest.Eventually(e.t, 5*time.Second, "tenant "+name+" updated", func() bool {
		got, ok := e.dir.Lookup(name)
		return ok && got.ServiceTradeToken == c.ServiceTradeToken && len(got.StandardSecrets) == len(c.StandardSecrets) &&
			got.RatePerSecond == c.RatePerSecond && got.Burst == c.Burst
	})
}

type answer struct {
	status     int
	retryAfter string
	body       map[string]any
}

func (e *env) post(path string, body []byte, hdr http.Header) answer {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) answer {
	e.t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
		e.t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		e.t.Fatalf("answer Content-Type %q", resp.Header.Get("Content-Type"))
	}
	return a
}

// signed returns Standard Webhooks headers for body signed with secret at unix time ts.
func signed(t testing.TB, secret, id string, ts int64, body []byte) http.Header {
	t.Helper()
	s, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", s.Sign(id, ts, body))
	return h
}

func (e *env) streamMsgs(name string) uint64 {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

// lastEvent returns the last stored message on subject.
func (e *env) lastEvent(subject string) (*jetstream.RawStreamMsg, event.CloudEvent) {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), "EVENTS")
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		e.t.Fatalf("no message on %s: %v", subject, err)
	}
	var ce event.CloudEvent
	if err := json.Unmarshal(m.Data, &ce); err != nil {
		e.t.Fatal(err)
	}
	return m, ce
}

func TestStandardWebhooks(t *testing.T) {
	e := newEnv(t)
	e.putTenant("demo", tenant.Config{ServiceTradeToken: stToken, StandardSecrets: []string{otherSecret, specSecret}, RatePerSecond: 10000, Burst: 10000})
	now := e.now.Load()
	body := []byte(`{"type":"asset.updated","timestamp":"2026-01-02T03:04:05Z","data":{"id":9007199254740993,"status":"inactive"}}`)

	tests := []struct {
		name       string
		hdr        http.Header
		body       []byte
		wantStatus int
		wantCode   string
		wantStored float64
		wantDup    float64
	}{
		{name: "signed with the old key during rotation", hdr: signed(t, specSecret, "msg_1", now, body), body: body, wantStatus: 200, wantStored: 1},
		{name: "same webhook-id again is a counted duplicate", hdr: signed(t, specSecret, "msg_1", now, body), body: body, wantStatus: 200, wantDup: 1},
		{name: "signed with the new key", hdr: signed(t, otherSecret, "msg_2", now, body), body: body, wantStatus: 200, wantStored: 1},
		{name: "stale timestamp", hdr: signed(t, specSecret, "msg_3", now-301, body), body: body, wantStatus: 401, wantCode: "unauthenticated"},
		{name: "timestamp from the future", hdr: signed(t, specSecret, "msg_3", now+301, body), body: body, wantStatus: 401, wantCode: "unauthenticated"},
		{name: "tampered body", hdr: signed(t, specSecret, "msg_3", now, body), body: bytes.Replace(body, []byte("inactive"), []byte("active"), 1), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "unknown key", hdr: signed(t, "whsec_"+strings.Repeat("QkJC", 8), "msg_3", now, body), body: body, wantStatus: 401, wantCode: "unauthenticated"},
		{name: "no signature headers", hdr: http.Header{}, body: body, wantStatus: 401, wantCode: "unauthenticated"},
		{name: "signed but malformed", hdr: signed(t, specSecret, "msg_4", now, []byte(`{"test": 2432232314}`)), body: []byte(`{"test": 2432232314}`), wantStatus: 400, wantCode: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.post("/hooks/demo/standard", tt.body, tt.hdr)
			if a.status != tt.wantStatus {
				t.Fatalf("status %d %v, want %d", a.status, a.body, tt.wantStatus)
			}
			if tt.wantCode != "" && a.body["code"] != tt.wantCode {
				t.Fatalf("code %v, want %s", a.body["code"], tt.wantCode)
			}
			if tt.wantStatus == 200 && (a.body["stored"] != tt.wantStored || a.body["duplicates"] != tt.wantDup) {
				t.Fatalf("answer %v, want stored %v duplicates %v", a.body, tt.wantStored, tt.wantDup)
			}
		})
	}
	if got := e.streamMsgs("EVENTS"); got != 2 {
		t.Fatalf("EVENTS holds %d messages, want 2", got)
	}
	m, ce := e.lastEvent("events.demo.asset.9007199254740993.updated")
	if ce.EntityID != "9007199254740993" || ce.Type != "dev.fieldstream.asset.updated" || ce.SpecVersion != "1.0" || ce.Tenant != "demo" {
		t.Errorf("envelope %+v", ce)
	}
	if !bytes.Contains(m.Data, []byte(`"data":{"id":9007199254740993,"status":"inactive"}`)) {
		t.Errorf("data not kept byte for byte: %s", m.Data)
	}
	if m.Header.Get(jetstream.MsgIDHeader) != "sw:demo:msg_2" {
		t.Errorf("Nats-Msg-Id %q", m.Header.Get(jetstream.MsgIDHeader))
	}

	t.Run("captured request replayed after the tolerance window", func(t *testing.T) {
		hdr := signed(t, specSecret, "msg_5", now, body)
		if a := e.post("/hooks/demo/standard", body, hdr); a.status != 200 {
			t.Fatalf("original: %d %v", a.status, a.body)
		}
		e.now.Add(301)
		defer e.now.Add(-301)
		if a := e.post("/hooks/demo/standard", body, hdr); a.status != 401 {
			t.Fatalf("replay: %d %v, want 401", a.status, a.body)
		}
	})
}

// stDelivery is a ServiceTrade delivery with one item per id.
func stDelivery(messageID string, ts int64, ids ...int64) []byte {
	items := make([]string, len(ids))
	for i, id := range ids {
		items[i] = fmt.Sprintf(`{"action":"updated","timestamp":%d,"userId":2274033731790001,"entity":{"type":"job","id":%d,"uri":"https://api.servicetrade.com/api/job/%d"},"changeset":[{"field":"status","oldValue":"scheduled","newValue":"completed"}]}`, ts, id, id)
	}
	return []byte(fmt.Sprintf(`{"messageId":%q,"timestamp":"%d","data":[%s]}`, messageID, ts+5, strings.Join(items, ",")))
}

func TestServiceTradeRetriedDeliveriesAddNothing(t *testing.T) {
	e := newEnv(t)
	body := stDelivery("5b0f3c1e-8a2d-4a51-9a7e-2f0d6c1b9e44", 1767106195, 2274033731792769, 9007199254740993, 9223372036854775807)
	a := e.post("/hooks/demo/servicetrade/"+stToken, body, nil)
	if a.status != 200 || a.body["stored"] != 3.0 || a.body["events"] != 3.0 {
		t.Fatalf("first delivery: %d %v", a.status, a.body)
	}
	for attempt := 2; attempt <= 3; attempt++ {
		a = e.post("/hooks/demo/servicetrade/"+stToken, body, nil)
		if a.status != 200 || a.body["stored"] != 0.0 || a.body["duplicates"] != 3.0 {
			t.Fatalf("retry %d: %d %v", attempt, a.status, a.body)
		}
	}
	// The same changes in another delivery (a new messageId) are the same events.
	a = e.post("/hooks/demo/servicetrade/"+stToken, stDelivery("other-message", 1767106195, 9007199254740993), nil)
	if a.status != 200 || a.body["duplicates"] != 1.0 {
		t.Fatalf("re-sent item: %d %v", a.status, a.body)
	}
	if got := e.streamMsgs("EVENTS"); got != 3 {
		t.Fatalf("EVENTS holds %d messages, want 3", got)
	}
	m, ce := e.lastEvent("events.demo.work_order.9223372036854775807.completed")
	if ce.EntityID != "9223372036854775807" || ce.ID != "st:demo:work_order:9223372036854775807:completed:1767106195:bae11ceb7284" || ce.DeliveryID != "5b0f3c1e-8a2d-4a51-9a7e-2f0d6c1b9e44" {
		t.Errorf("envelope %+v", ce)
	}
	if !bytes.Contains(m.Data, []byte(`"id":9223372036854775807`)) {
		t.Errorf("entity id not exact in data: %s", m.Data)
	}
	if ce.Time.Unix() != 1767106195 {
		t.Errorf("time %v", ce.Time)
	}

	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !bytes.Contains(b, []byte(`fieldstream_gateway_duplicates_total{source="servicetrade",tenant="demo"} 7`)) {
		t.Errorf("metrics lack 7 duplicates:\n%s", grep(b, "fieldstream_gateway"))
	}
	if !bytes.Contains(b, []byte(`fieldstream_gateway_requests_total{outcome="ok",source="servicetrade",status="200",tenant="demo"} 4`)) {
		t.Errorf("metrics lack 4 ok requests:\n%s", grep(b, "fieldstream_gateway"))
	}
}

func grep(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestErrorAnswers(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.MaxBodyBytes = 4096 })
	e.putTenant("slow", tenant.Config{ServiceTradeToken: "s", StandardSecrets: []string{specSecret}, RatePerSecond: 0.1, Burst: 2})
	e.putTenant("nostd", tenant.Config{ServiceTradeToken: "n"})
	ok := stDelivery("m1", 1767106195, 1)
	tests := []struct {
		name           string
		path           string
		body           []byte
		wantStatus     int
		wantCode       string
		wantRetryAfter bool
	}{
		{name: "bad token", path: "/hooks/demo/servicetrade/dev-tokem", body: ok, wantStatus: 401, wantCode: "unauthenticated"},
		{name: "unknown tenant", path: "/hooks/nobody/servicetrade/dev-token", body: ok, wantStatus: 404, wantCode: "unknown_tenant"},
		{name: "tenant without standard secrets", path: "/hooks/nostd/standard", body: ok, wantStatus: 401, wantCode: "unauthenticated"},
		{name: "not json", path: "/hooks/demo/servicetrade/dev-token", body: []byte(`{"messageId":`), wantStatus: 400, wantCode: "malformed"},
		{name: "float id", path: "/hooks/demo/servicetrade/dev-token", body: []byte(`{"messageId":"m","data":[{"action":"created","timestamp":1,"entity":{"type":"job","id":1.5}}]}`), wantStatus: 400, wantCode: "malformed"},
		{name: "invalid utf-8", path: "/hooks/demo/servicetrade/dev-token", body: []byte("{\"messageId\":\"\xff\",\"data\":[]}"), wantStatus: 400, wantCode: "malformed"},
		{name: "declared length over the limit", path: "/hooks/demo/servicetrade/dev-token", body: bytes.Repeat([]byte(" "), 4097), wantStatus: 413, wantCode: "body_too_large"},
		{name: "within the burst", path: "/hooks/slow/servicetrade/s", body: stDelivery("m2", 1767106195, 1, 2), wantStatus: 200},
		// ServiceTrade drops a delivery answered with any 4xx, so a 429 would lose it.
		{name: "over the rate limit", path: "/hooks/slow/servicetrade/s", body: stDelivery("m3", 1767106195, 3), wantStatus: 503, wantCode: "rate_limited", wantRetryAfter: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.post(tt.path, tt.body, nil)
			if a.status != tt.wantStatus || (tt.wantCode != "" && a.body["code"] != tt.wantCode) {
				t.Fatalf("got %d %v, want %d %s", a.status, a.body, tt.wantStatus, tt.wantCode)
			}
			if tt.wantStatus >= 400 && a.body["error"] == "" {
				t.Fatalf("no error message: %v", a.body)
			}
			if tt.wantRetryAfter {
				if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 {
					t.Fatalf("Retry-After %q", a.retryAfter)
				}
			}
		})
	}
	// A Standard Webhooks sender reads 429 as "throttle" and retries.
	body := []byte(`{"type":"asset.updated","data":{"id":7}}`)
	a := e.post("/hooks/slow/standard", body, signed(t, specSecret, "msg_slow", e.now.Load(), body))
	if a.status != http.StatusTooManyRequests || a.body["code"] != "rate_limited" || a.retryAfter == "" {
		t.Fatalf("Standard Webhooks over the rate limit: got %d %v Retry-After %q, want 429 rate_limited with Retry-After", a.status, a.body, a.retryAfter)
	}
	if got := e.streamMsgs("EVENTS"); got != 2 {
		t.Fatalf("EVENTS holds %d messages, want only the 2 accepted", got)
	}
}

// countingReader yields an endless body and counts what the server consumed.
type countingReader struct{ n atomic.Int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.n.Load() > 64<<20 {
		return 0, io.EOF
	}
	for i := range p {
		p[i] = ' '
	}
	r.n.Add(int64(len(p)))
	return len(p), nil
}

func TestChunkedBodyOverLimit(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.MaxBodyBytes = 64 << 10 })
	body := &countingReader{}
	req, err := http.NewRequest(http.MethodPost, e.url+"/hooks/demo/servicetrade/"+stToken, io.NopCloser(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	// The client may have pushed more into socket buffers, but nowhere near 64 MiB.
	if sent := body.n.Load(); sent > 16<<20 {
		t.Fatalf("client sent %d bytes before the answer; the server kept reading", sent)
	}
	if a := e.post("/hooks/demo/servicetrade/"+stToken, stDelivery("after", 1767106195, 1), nil); a.status != 200 {
		t.Fatalf("next honest request: %d %v", a.status, a.body)
	}
}

func TestPartlyPersistedBatchIsCompletedByRetry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s, err := e.js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 2, jetstream.DiscardNew
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	body := stDelivery("m", 1767106195, 11, 12, 13)
	a := e.post("/hooks/demo/servicetrade/"+stToken, body, nil)
	if a.status != 503 || a.body["code"] != "not_persisted" || a.retryAfter == "" {
		t.Fatalf("partly persisted batch: %d %v Retry-After %q, want 503 with Retry-After", a.status, a.body, a.retryAfter)
	}
	if got := e.streamMsgs("EVENTS"); got != 2 {
		t.Fatalf("EVENTS holds %d, want the 2 that fit", got)
	}
	cfg.MaxMsgs = -1
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	a = e.post("/hooks/demo/servicetrade/"+stToken, body, nil)
	if a.status != 200 || a.body["stored"] != 1.0 || a.body["duplicates"] != 2.0 {
		t.Fatalf("retry: %d %v, want 1 stored and 2 duplicates", a.status, a.body)
	}
	if got := e.streamMsgs("EVENTS"); got != 3 {
		t.Fatalf("EVENTS holds %d, want 3", got)
	}
}

func TestReadinessFollowsJetStream(t *testing.T) {
	e := newEnv(t)
	ready := func() int {
		resp, err := e.client.Get(e.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := ready(); got != 200 {
		t.Fatalf("readyz %d with JetStream up", got)
	}
	port, dir := e.srv.Addr().(*net.TCPAddr).Port, e.srv.JetStreamConfig().StoreDir
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	natstest.Eventually(t, 5*time.Second, "readyz 503 while JetStream is down", func() bool { return ready() == 503 })

	start := time.Now()
	a := e.post("/hooks/demo/servicetrade/"+stToken, stDelivery("down", 1767106195, 7), nil)
	if a.status != 503 || a.retryAfter == "" {
		t.Fatalf("webhook while down: %d %v, want 503 with Retry-After", a.status, a.body)
	}
	if took := time.Since(start); took >= 5*time.Second {
		t.Fatalf("answered after %s, past the sender's 5 s timeout", took)
	}
	if resp, err := e.client.Get(e.url + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz while JetStream is down: %v %v", resp, err)
	}

	e.srv = natstest.RunServerAt(t, port, strings.TrimSuffix(dir, "/jetstream"))
	natstest.Eventually(t, 15*time.Second, "readyz 200 after JetStream returns", func() bool { return ready() == 200 })
	if a := e.post("/hooks/demo/servicetrade/"+stToken, stDelivery("down", 1767106195, 7), nil); a.status != 200 || a.body["stored"] != 1.0 {
		t.Fatalf("sender's retry after recovery: %d %v", a.status, a.body)
	}
}

func TestTenantRekeyedWithoutRestart(t *testing.T) {
	e := newEnv(t)
	e.putTenant("demo", tenant.Config{ServiceTradeToken: "rotated"})
	if a := e.post("/hooks/demo/servicetrade/rotated", stDelivery("r", 1767106195, 1), nil); a.status != 200 {
		t.Fatalf("new token: %d %v", a.status, a.body)
	}
	if a := e.post("/hooks/demo/servicetrade/"+stToken, stDelivery("r2", 1767106195, 2), nil); a.status != 401 {
		t.Fatalf("old token: %d, want 401", a.status)
	}
}

func TestStalledClientsAreCutOff(t *testing.T) {
	e := newEnv(t)
	addr := strings.TrimPrefix(e.url, "http://")
	tests := []struct {
		name string
		send string
	}{
		{name: "headers never finish", send: "POST /hooks/demo/servicetrade/dev-token HTTP/1.1\r\nHost: x\r\n"},
		{name: "body never arrives", send: "POST /hooks/demo/servicetrade/dev-token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(tt.send)); err != nil {
				t.Fatal(err)
			}
			// The server's read timeouts (2 s headers, 3 s request) must end the
			// connection well before this client-side deadline.
			c.SetReadDeadline(time.Now().Add(8 * time.Second))
			_, err = io.ReadAll(c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("server still holds the stalled connection after 8 s")
			}
		})
	}
	if a := e.post("/hooks/demo/servicetrade/"+stToken, stDelivery("after", 1767106195, 1), nil); a.status != 200 {
		t.Fatalf("next honest request: %d", a.status)
	}
}

// TestEventOverNATSLimit: a body the gateway accepts whose event would be larger than
// NATS takes is refused 413 at once — not 503, which the sender would retry for ever.
func TestEventOverNATSLimit(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) {
		c.MaxBodyBytes = 2 << 20
		// Under the race detector the server takes longer than the default 250 ms to refuse
		// a 1 MiB message, which the gateway would take for a JetStream that stopped storing.
		c.UnavailableAfter = 10 * time.Second
	})
	pad := strings.Repeat("x", 1<<20)
	body := []byte(`{"type":"asset.updated","data":{"id":1,"notes":"` + pad + `"}}`)
	a := e.post("/hooks/demo/standard", body, signed(t, specSecret, "msg_big", e.now.Load(), body))
	if a.status != http.StatusRequestEntityTooLarge || a.body["code"] != "event_too_large" {
		t.Fatalf("got %d %v, want 413 event_too_large", a.status, a.body)
	}
	if n := e.streamMsgs("EVENTS"); n != 0 {
		t.Fatalf("EVENTS holds %d messages, want 0", n)
	}
}

// TestRateIsChargedInFull: a delivery larger than the tenant's burst is taken when the
// bucket is full — it must never be refused for ever — but charged every event, so the
// deliveries after it wait until the tenant's rate has paid for it: ServiceTrade's with a
// 503 (it drops a 4xx), Standard Webhooks' with a 429, each with a Retry-After that says
// how long. Clamping the charge to the burst let a tenant exceed its rate many times over.
func TestRateIsChargedInFull(t *testing.T) {
	e := newEnv(t)
	e.putTenant("bulk", tenant.Config{ServiceTradeToken: "b", StandardSecrets: []string{specSecret}, RatePerSecond: 5, Burst: 10})
	ids := make([]int64, 100)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	if a := e.post("/hooks/bulk/servicetrade/b", stDelivery("big", 1767106195, ids...), nil); a.status != 200 {
		t.Fatalf("100 events with the bucket full: %d %v, want 200", a.status, a.body)
	}
	// 100 events at 5/s are 20 s of the tenant's rate; the bucket refills its 10 in 2 s.
	e.now.Add(3)
	a := e.post("/hooks/bulk/servicetrade/b", stDelivery("next", 1767106195, 101), nil)
	if a.status != http.StatusServiceUnavailable || a.body["code"] != "rate_limited" {
		t.Fatalf("ServiceTrade 3 s after 100 events: %d %v, want 503 rate_limited", a.status, a.body)
	}
	if n, _ := strconv.Atoi(a.retryAfter); n < 15 || n > 18 {
		t.Fatalf("Retry-After %q, want the ~16.2 s until 90 events are paid for and one more fits", a.retryAfter)
	}
	body := []byte(`{"type":"asset.updated","data":{"id":7}}`)
	a = e.post("/hooks/bulk/standard", body, signed(t, specSecret, "msg_bulk", e.now.Load(), body))
	if a.status != http.StatusTooManyRequests || a.retryAfter == "" {
		t.Fatalf("Standard Webhooks 3 s after 100 events: %d %v Retry-After %q, want 429 with Retry-After", a.status, a.body, a.retryAfter)
	}
	e.now.Add(17)
	if a := e.post("/hooks/bulk/servicetrade/b", stDelivery("next", 1767106195, 101), nil); a.status != 200 {
		t.Fatalf("once the 100 events are paid for: %d %v, want 200", a.status, a.body)
	}
	// A delivery above the burst waits for a full bucket, then goes through again.
	if a := e.post("/hooks/bulk/servicetrade/b", stDelivery("big2", 1767106196, ids...), nil); a.status != http.StatusServiceUnavailable {
		t.Fatalf("100 events with the bucket not full: %d %v, want 503", a.status, a.body)
	}
	e.now.Add(3)
	if a := e.post("/hooks/bulk/servicetrade/b", stDelivery("big2", 1767106196, ids...), nil); a.status != 200 {
		t.Fatalf("100 events once the bucket is full again: %d %v, want 200", a.status, a.body)
	}
}

// TestBadTenantRecordKeepsServing: a tenant record that does not parse must not unserve the
// tenant — ServiceTrade counts a 404 as delivered and drops the events — so the gateway
// keeps serving the last good record, and counts the bad one in /metrics.
func TestBadTenantRecordKeepsServing(t *testing.T) {
	e := newEnv(t)
	if _, err := e.kv.Put(context.Background(), "demo", []byte(`{"servicetrade_token":"dev-token","burst":-1}`)); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "the bad record counted in /metrics", func() bool {
		return strings.Contains(e.metrics(), "fieldstream_gateway_tenant_records_rejected 1")
	})
	if a := e.post("/hooks/demo/servicetrade/"+stToken, stDelivery("after-bad", 1767106195, 1), nil); a.status != 200 {
		t.Fatalf("after a bad record: %d %v, want 200 from the last good record", a.status, a.body)
	}
	e.putTenant("demo", tenant.Config{ServiceTradeToken: stToken, RatePerSecond: 10000, Burst: 10000})
	natstest.Eventually(t, 5*time.Second, "the fixed record clears the count", func() bool {
		return strings.Contains(e.metrics(), "fieldstream_gateway_tenant_records_rejected 0")
	})
}

// metrics returns the gateway's /metrics text.
func (e *env) metrics() string {
	resp, err := e.client.Get(e.url + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestUnansweredPublishesAreAnsweredAtOnce: when JetStream stops answering publishes (no
// stream leader during an election; a stream whose store failed after ENOSPC), the gateway
// must not let every request wait its whole answer deadline: it notices the stall, answers
// the waiting requests and all that follow 503 with Retry-After at once, probes with one
// request per interval, and stores again as soon as a probe is acknowledged. Here the stall
// is EVENTS deleted and a plain subscriber on its subjects that never acknowledges.
func TestUnansweredPublishesAreAnsweredAtOnce(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.AnswerWithin = 4 * time.Second })
	ctx := context.Background()
	if a := e.post("/hooks/demo/servicetrade/"+stToken, stDelivery("before", 1767106195, 1), nil); a.status != 200 {
		t.Fatalf("before: %d %v", a.status, a.body)
	}
	if err := e.js.DeleteStream(ctx, "EVENTS"); err != nil {
		t.Fatal(err)
	}
	nc, _ := natstest.Connect(t, e.srv)
	swallow, err := nc.Subscribe("events.>", func(*nats.Msg) {}) // takes every publish, answers none
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	answers := make([]answer, 40)
	took := make([]time.Duration, len(answers))
	for i := range answers {
		wg.Go(func() {
			start := time.Now()
			answers[i] = e.post("/hooks/demo/servicetrade/"+stToken, stDelivery(fmt.Sprint("during-", i), 1767106195, int64(100+i)), nil)
			took[i] = time.Since(start)
		})
		if i == len(answers)/2 { // the other half once the gateway noticed
			natstest.Eventually(t, 4*time.Second, "the stall noticed", func() bool {
				return strings.Contains(e.metrics(), "fieldstream_gateway_jetstream_unavailable 1")
			})
		}
	}
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusServiceUnavailable || a.body["code"] != "not_persisted" || a.retryAfter == "" {
			t.Errorf("request %d: %d %v Retry-After %q, want 503 not_persisted with Retry-After", i, a.status, a.body, a.retryAfter)
		}
		if took[i] >= 2*time.Second {
			t.Errorf("request %d answered after %s: it waited on JetStream instead of being answered at once", i, took[i])
		}
	}
	if !strings.Contains(e.metrics(), "fieldstream_gateway_jetstream_unavailable 1") {
		t.Error("fieldstream_gateway_jetstream_unavailable is not 1")
	}
	if err := swallow.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Apply(ctx, e.js, streams.Options{}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "stored again once a probe succeeds", func() bool {
		return e.post("/hooks/demo/servicetrade/"+stToken, stDelivery("after", 1767106195, 2), nil).status == 200
	})
	if !strings.Contains(e.metrics(), "fieldstream_gateway_jetstream_unavailable 0") {
		t.Error("fieldstream_gateway_jetstream_unavailable is not back to 0")
	}
}
