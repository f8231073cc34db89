package gateway_test

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/services/gateway"
)

// hostileMaxBody is the body limit of the hostile-input gateway: small, so oversize cases
// stay cheap.
const hostileMaxBody = 64 << 10

// hostileLimits are short HTTP limits, so slow and stalled clients are cut off quickly.
var hostileLimits = gateway.HTTPLimits{HeaderWithin: 300 * time.Millisecond, RequestWithin: 600 * time.Millisecond, WriteWithin: 2 * time.Second}

// hostileEnv is a gateway under attack: a fresh JetStream, short limits, and a sequence
// that makes every honest event new.
type hostileEnv struct {
	*env
	seq atomic.Int64
}

func newHostileEnv(t *testing.T) *hostileEnv {
	e := newEnv(t, func(c *gateway.Config) { c.MaxBodyBytes = hostileMaxBody })
	e.serve(hostileLimits.Server("", e.gw))
	e.putTenant("nostd", tenant.Config{ServiceTradeToken: "n"})
	e.putTenant("stdonly", tenant.Config{StandardSecrets: []string{otherSecret}})
	return &hostileEnv{env: e}
}

func (h *hostileEnv) next() int64 { return 1_000_000 + h.seq.Add(1) }

// signedNow signs body with the demo tenant's secret, a fresh webhook-id and the gateway's
// current time: what an honest Standard Webhooks sender sends.
func (h *hostileEnv) signedNow(t testing.TB, body []byte) http.Header {
	return signed(t, specSecret, "msg_"+strconv.FormatInt(h.next(), 10), h.now.Load(), body)
}

// endpoint is one webhook route and how an honest sender uses it.
type endpoint struct {
	name string
	path string
	// event is a body with one event about entity n.
	event func(n int64) []byte
	// auth returns what authenticates body: nothing for ServiceTrade (its credential is
	// the path token), a fresh signature for Standard Webhooks.
	auth func(h *hostileEnv, t testing.TB, body []byte) http.Header
	// hostile are the cases only this endpoint has.
	hostile []hostileCase
}

// hostileCase is one request that must be refused with a 4xx and publish nothing.
type hostileCase struct {
	name string
	// path defaults to the endpoint's; method to POST.
	path, method string
	body         []byte
	// header, when set, replaces the endpoint's auth: header tricks.
	header func(h *hostileEnv, t testing.TB, body []byte) http.Header
	// contentType, when set, is sent as Content-Type.
	contentType string
	// chunked sends the body without a Content-Length.
	chunked bool
	// raw, when set, is sent as-is over TCP instead (framing tricks), with {path} replaced
	// and {auth} replaced by the header lines that authenticate rawBody, the body the
	// server will read.
	raw     string
	rawBody []byte

	wantStatus int
	// wantCode is the JSON error's code; "" where net/http answers in plain text before the
	// gateway sees the request.
	wantCode string
	// wantError is part of the JSON error's message.
	wantError string
}

func stBody(item string) []byte {
	return []byte(`{"messageId":"m-1","timestamp":"1767106200","data":[` + item + `]}`)
}

func stItem(id string) []byte {
	return stBody(`{"action":"updated","timestamp":1767106195,"entity":{"type":"job","id":` + id + `}}`)
}

func swBody(id string) []byte {
	return []byte(`{"type":"asset.updated","timestamp":"2026-01-02T03:04:05Z","data":{"id":` + id + `}}`)
}

func nested(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }

// withSigned signs body as an honest sender would, then lets edit play a trick on it.
func withSigned(edit func(h http.Header, body []byte)) func(*hostileEnv, testing.TB, []byte) http.Header {
	return func(h *hostileEnv, t testing.TB, body []byte) http.Header {
		hdr := h.signedNow(t, body)
		edit(hdr, body)
		return hdr
	}
}

// signedAt signs body with secret at the gateway's time plus skew.
func signedAt(secret string, skew int64) func(*hostileEnv, testing.TB, []byte) http.Header {
	return func(h *hostileEnv, t testing.TB, body []byte) http.Header {
		return signed(t, secret, "msg_"+strconv.FormatInt(h.next(), 10), h.now.Load()+skew, body)
	}
}

var serviceTrade = endpoint{
	name:  "servicetrade",
	path:  "/hooks/demo/servicetrade/" + stToken,
	event: func(n int64) []byte { return stDelivery("honest-"+strconv.FormatInt(n, 10), 1767106195, n) },
	auth:  func(*hostileEnv, testing.TB, []byte) http.Header { return http.Header{} },
	hostile: []hostileCase{
		{name: "invalid UTF-8 in messageId", body: []byte("{\"messageId\":\"m\xff\",\"data\":[]}"), wantStatus: 400, wantCode: "malformed", wantError: "UTF-8"},
		{name: "overlong UTF-8 in entity type", body: stBody(`{"action":"updated","timestamp":1,"entity":{"type":"jo` + "\xc0\xaf" + `","id":1}}`), wantStatus: 400, wantCode: "malformed", wantError: "UTF-8"},
		{name: "unpaired surrogate escape in the changeset", body: stBody(`{"action":"updated","timestamp":1,"entity":{"type":"job","id":1},"changeset":[{"field":"name","newValue":"\ud800"}]}`), wantStatus: 400, wantCode: "malformed", wantError: "surrogate"},
		{name: "changeset nested 100 deep", body: stBody(`{"action":"updated","timestamp":1,"entity":{"type":"job","id":1},"changeset":[{"field":"x","newValue":` + nested(100) + `}]}`), wantStatus: 400, wantCode: "malformed", wantError: "nested deeper"},
		{name: "id beyond int64", body: stItem("9223372036854775808"), wantStatus: 400, wantCode: "malformed", wantError: "entity.id"},
		{name: "id 1e400", body: stItem("1e400"), wantStatus: 400, wantCode: "malformed"},
		{name: "id -0", body: stItem("-0"), wantStatus: 400, wantCode: "malformed", wantError: "entity.id"},
		{name: "id 1.0", body: stItem("1.0"), wantStatus: 400, wantCode: "malformed", wantError: "entity.id"},
		{name: "id as a float 2.274033731792769e15", body: stItem("2.274033731792769e15"), wantStatus: 400, wantCode: "malformed", wantError: "entity.id"},
		{name: "quoted id 1e3", body: stItem(`"1e3"`), wantStatus: 400, wantCode: "malformed", wantError: "entity.id"},
		{name: "timestamp 1e400", body: stBody(`{"action":"updated","timestamp":1e400,"entity":{"type":"job","id":1}}`), wantStatus: 400, wantCode: "malformed"},
		{name: "userId 1e400 beside a good id", body: stBody(`{"action":"updated","timestamp":1,"userId":1e400,"entity":{"type":"job","id":1}}`), wantStatus: 400, wantCode: "malformed", wantError: "out of range"},
		{name: "two ids", body: stItem(`1,"id":2`), wantStatus: 400, wantCode: "malformed", wantError: "duplicate key"},
		{name: "id and escaped id", body: stItem(`1,"\u0069d":2`), wantStatus: 400, wantCode: "malformed", wantError: "duplicate key"},
		{name: "two actions", body: stBody(`{"action":"created","action":"deleted","timestamp":1,"entity":{"type":"job","id":1}}`), wantStatus: 400, wantCode: "malformed", wantError: "duplicate key"},
		{name: "action and Action", body: stBody(`{"action":"created","Action":"deleted","timestamp":1,"entity":{"type":"job","id":1}}`), wantStatus: 400, wantCode: "malformed", wantError: "duplicate key"},
		{name: "two entities", body: stBody(`{"action":"created","timestamp":1,"entity":{"type":"job","id":1},"entity":{"type":"asset","id":2}}`), wantStatus: 400, wantCode: "malformed", wantError: "duplicate key"},
		{name: "two messageIds", body: []byte(`{"messageId":"a","messageId":"b","data":[]}`), wantStatus: 400, wantCode: "malformed", wantError: "duplicate key"},
		{name: "messageId of 300 bytes, copied into every event", body: []byte(`{"messageId":"` + strings.Repeat("m", 300) + `","data":[]}`), wantStatus: 400, wantCode: "malformed", wantError: "messageId"},
		{name: "gzip body without decompression", body: gzipped(stDelivery("gz", 1767106195, 5)), header: func(*hostileEnv, testing.TB, []byte) http.Header { return http.Header{"Content-Encoding": {"gzip"}} }, wantStatus: 400, wantCode: "malformed"},
		{name: "wrong token", path: "/hooks/demo/servicetrade/dev-tokem", body: stDelivery("t", 1767106195, 5), wantStatus: 401, wantCode: "unauthenticated", wantError: "token"},
		{name: "token in another case", path: "/hooks/demo/servicetrade/DEV-TOKEN", body: stDelivery("t", 1767106195, 5), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "token with a suffix", path: "/hooks/demo/servicetrade/dev-token-and-more", body: stDelivery("t", 1767106195, 5), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "token prefix", path: "/hooks/demo/servicetrade/dev", body: stDelivery("t", 1767106195, 5), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "another tenant's token", path: "/hooks/demo/servicetrade/n", body: stDelivery("t", 1767106195, 5), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "tenant without a ServiceTrade token", path: "/hooks/stdonly/servicetrade/x", body: stDelivery("t", 1767106195, 5), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "empty token", path: "/hooks/demo/servicetrade/", body: stDelivery("t", 1767106195, 5), wantStatus: 404, wantCode: "not_found"},
		{name: "no token segment", path: "/hooks/demo/servicetrade", body: stDelivery("t", 1767106195, 5), wantStatus: 404, wantCode: "not_found"},
		{name: "token in the query instead", path: "/hooks/demo/servicetrade?token=" + stToken, body: stDelivery("t", 1767106195, 5), wantStatus: 404, wantCode: "not_found"},
		{name: "unknown tenant", path: "/hooks/nobody/servicetrade/" + stToken, body: stDelivery("t", 1767106195, 5), wantStatus: 404, wantCode: "unknown_tenant"},
		{name: "tenant in another case", path: "/hooks/DEMO/servicetrade/" + stToken, body: stDelivery("t", 1767106195, 5), wantStatus: 404, wantCode: "unknown_tenant"},
	},
}

var standard = endpoint{
	name:  "standard",
	path:  "/hooks/demo/standard",
	event: func(n int64) []byte { return swBody(strconv.FormatInt(n, 10)) },
	auth:  func(h *hostileEnv, t testing.TB, body []byte) http.Header { return h.signedNow(t, body) },
	hostile: []hostileCase{
		{name: "invalid UTF-8 in data", body: []byte("{\"type\":\"asset.updated\",\"data\":{\"id\":1,\"name\":\"\xff\"}}"), wantStatus: 400, wantCode: "malformed", wantError: "UTF-8"},
		{name: "UTF-8 encoded surrogate", body: []byte("{\"type\":\"asset.updated\",\"data\":{\"id\":1,\"name\":\"\xed\xa0\x80\"}}"), wantStatus: 400, wantCode: "malformed", wantError: "UTF-8"},
		{name: "unpaired surrogate escape", body: []byte(`{"type":"asset.updated","data":{"id":1,"name":"\udc00"}}`), wantStatus: 400, wantCode: "malformed", wantError: "surrogate"},
		{name: "data nested 100 deep", body: []byte(`{"type":"asset.updated","data":{"id":1,"x":` + nested(100) + `}}`), wantStatus: 400, wantCode: "malformed", wantError: "nested deeper"},
		{name: "id beyond int64", body: swBody("9223372036854775808"), wantStatus: 400, wantCode: "malformed", wantError: "data.id"},
		{name: "id beyond uint64", body: swBody("18446744073709551616"), wantStatus: 400, wantCode: "malformed", wantError: "data.id"},
		{name: "id 1e400", body: swBody("1e400"), wantStatus: 400, wantCode: "malformed"},
		{name: "id -0", body: swBody("-0"), wantStatus: 400, wantCode: "malformed", wantError: "data.id"},
		{name: "id 1.0", body: swBody("1.0"), wantStatus: 400, wantCode: "malformed", wantError: "data.id"},
		{name: "id 42e0", body: swBody("42e0"), wantStatus: 400, wantCode: "malformed", wantError: "data.id"},
		{name: "amount 1e400 beside a good id", body: swBody(`1,"amount":-1e400`), wantStatus: 400, wantCode: "malformed", wantError: "out of range"},
		{name: "two ids", body: swBody(`1,"id":2`), wantStatus: 400, wantCode: "malformed", wantError: "duplicate key"},
		{name: "id and ID", body: swBody(`1,"ID":2`), wantStatus: 400, wantCode: "malformed", wantError: "duplicate key"},
		{name: "two types", body: []byte(`{"type":"asset.updated","type":"asset.deleted","data":{"id":1}}`), wantStatus: 400, wantCode: "malformed", wantError: "duplicate key"},
		{name: "two data", body: []byte(`{"type":"asset.updated","data":{"id":1},"data":{"id":2}}`), wantStatus: 400, wantCode: "malformed", wantError: "duplicate key"},
		{name: "webhook-id twice", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Add("webhook-id", h.Get("webhook-id")) }), wantStatus: 400, wantCode: "malformed", wantError: "webhook-id header sent 2 times"},
		{name: "webhook-id twice in two cases", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h["WEBHOOK-ID"] = []string{"msg_other"} }), wantStatus: 400, wantCode: "malformed", wantError: "webhook-id header"},
		{name: "webhook-signature twice, the valid one first", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Add("webhook-signature", "v1,AAAA") }), wantStatus: 400, wantCode: "malformed", wantError: "webhook-signature header"},
		{name: "webhook-timestamp twice", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Add("webhook-timestamp", "1") }), wantStatus: 400, wantCode: "malformed", wantError: "webhook-timestamp header"},
		{name: "webhook-id of 257 bytes", body: swBody("5"), header: func(h *hostileEnv, t testing.TB, body []byte) http.Header {
			return signed(t, specSecret, strings.Repeat("m", 257), h.now.Load(), body)
		}, wantStatus: 400, wantCode: "malformed", wantError: "webhook-id"},
		{name: "webhook-id with a space", body: swBody("5"), header: func(h *hostileEnv, t testing.TB, body []byte) http.Header {
			return signed(t, specSecret, "msg 1", h.now.Load(), body)
		}, wantStatus: 400, wantCode: "malformed", wantError: "webhook-id"},
		{name: "no headers", body: swBody("5"), header: func(*hostileEnv, testing.TB, []byte) http.Header { return http.Header{} }, wantStatus: 401, wantCode: "unauthenticated", wantError: "missing"},
		{name: "no webhook-signature", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Del("webhook-signature") }), wantStatus: 401, wantCode: "unauthenticated", wantError: "missing"},
		{name: "no webhook-timestamp", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Del("webhook-timestamp") }), wantStatus: 401, wantCode: "unauthenticated", wantError: "missing"},
		{name: "signature for another body", body: swBody("5"), header: func(h *hostileEnv, t testing.TB, _ []byte) http.Header { return h.signedNow(t, swBody("6")) }, wantStatus: 401, wantCode: "unauthenticated", wantError: "no webhook-signature matches"},
		{name: "signature for another webhook-id", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Set("webhook-id", "msg_replaced") }), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "signature with another timestamp", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) {
			n, _ := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
			h.Set("webhook-timestamp", strconv.FormatInt(n-1, 10))
		}), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "timestamp with a plus sign", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Set("webhook-timestamp", "+"+h.Get("webhook-timestamp")) }), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "signature version in upper case", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Set("webhook-signature", "V1"+h.Get("webhook-signature")[2:]) }), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "space after the comma", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Set("webhook-signature", "v1, "+h.Get("webhook-signature")[3:]) }), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "tab inside the signature", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) {
			s := h.Get("webhook-signature")
			h.Set("webhook-signature", s[:10]+"\t"+s[10:])
		}), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "signature without padding", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) {
			h.Set("webhook-signature", strings.TrimRight(h.Get("webhook-signature"), "="))
		}), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "signature in URL-safe base64", body: swBody("5"), header: func(h *hostileEnv, t testing.TB, body []byte) http.Header {
			for { // until the signature has a character that URL-safe base64 spells otherwise
				hdr := h.signedNow(t, body)
				if sig := hdr.Get("webhook-signature"); strings.ContainsAny(sig[3:], "+/") {
					hdr.Set("webhook-signature", strings.NewReplacer("+", "-", "/", "_").Replace(sig))
					return hdr
				}
			}
		}, wantStatus: 401, wantCode: "unauthenticated"},
		{name: "valid signature with base64 appended", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Set("webhook-signature", h.Get("webhook-signature")+"AAAA") }), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "signature of 64 base64 characters", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Set("webhook-signature", "v1,"+strings.Repeat("A", 64)) }), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "signature of 44 base64 characters without padding", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Set("webhook-signature", "v1,"+strings.Repeat("0", 44)) }), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "signature as v1a", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) { h.Set("webhook-signature", "v1a"+h.Get("webhook-signature")[2:]) }), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "the valid signature among 64 KiB of entries", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) {
			h.Set("webhook-signature", strings.Repeat("v1,"+strings.Repeat("A", 43)+"= ", 64<<10/48)+h.Get("webhook-signature"))
		}), wantStatus: 400, wantCode: "malformed", wantError: "more than 8 signatures"},
		{name: "one signature more than a sender signs with", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) {
			h.Set("webhook-signature", strings.Repeat(h.Get("webhook-signature")+" ", webhook.MaxSignatures+1))
		}), wantStatus: 400, wantCode: "malformed", wantError: "more than 8 signatures"},
		{name: "svix-* and webhook-* headers mixed", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) {
			h.Set("svix-id", h.Get("webhook-id"))
			h.Del("webhook-id")
		}), wantStatus: 400, wantCode: "malformed", wantError: "one family"},
		{name: "both families complete", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) {
			for _, k := range []string{"id", "timestamp", "signature"} {
				h.Set("svix-"+k, h.Get("webhook-"+k))
			}
		}), wantStatus: 400, wantCode: "malformed", wantError: "one family"},
		{name: "svix-id twice", body: swBody("5"), header: withSigned(func(h http.Header, _ []byte) {
			for _, k := range []string{"id", "timestamp", "signature"} {
				h.Set("svix-"+k, h.Get("webhook-"+k))
				h.Del("webhook-" + k)
			}
			h.Add("svix-id", "msg_other")
		}), wantStatus: 400, wantCode: "malformed", wantError: "svix-id header sent 2 times"},
		{name: "signed with another tenant's secret", body: swBody("5"), header: signedAt(otherSecret, 0), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "captured, replayed 5 min 1 s later", body: swBody("5"), header: signedAt(specSecret, -301), wantStatus: 401, wantCode: "unauthenticated", wantError: "tolerance"},
		{name: "signed 5 min 1 s ahead", body: swBody("5"), header: signedAt(specSecret, 301), wantStatus: 401, wantCode: "unauthenticated", wantError: "tolerance"},
		{name: "tenant without Standard Webhooks secrets", path: "/hooks/nostd/standard", body: swBody("5"), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "unknown tenant", path: "/hooks/nobody/standard", body: swBody("5"), wantStatus: 404, wantCode: "unknown_tenant"},
		{name: "no tenant", path: "/hooks//standard", body: swBody("5"), wantStatus: 404, wantCode: "not_found"},
	},
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// commonHostileCases are refused alike by both endpoints: the body is still signed or
// carries the right token, so each gets past authentication where it can.
func commonHostileCases(ep endpoint) []hostileCase {
	honest := ep.event(42)
	padded := append(bytes.Repeat([]byte(" "), hostileMaxBody), honest...)
	return []hostileCase{
		{name: "Content-Length over the limit", body: padded, wantStatus: 413, wantCode: "body_too_large"},
		{name: "chunked body over the limit", body: padded, chunked: true, wantStatus: 413, wantCode: "body_too_large"},
		{name: "Content-Length declared over the limit, no body sent", raw: "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n", wantStatus: 413, wantCode: "body_too_large"},
		{name: "empty body", body: []byte{}, wantStatus: 400, wantCode: "malformed"},
		{name: "not JSON", body: []byte("<xml/>"), wantStatus: 400, wantCode: "malformed"},
		{name: "JSON null", body: []byte("null"), wantStatus: 400, wantCode: "malformed"},
		{name: "two JSON documents", body: append(append([]byte{}, honest...), honest...), wantStatus: 400, wantCode: "malformed"},
		{name: "nested past encoding/json's 10,000 levels", body: []byte(`{"x":` + nested(10001) + `}`), wantStatus: 400, wantCode: "malformed"},
		{name: "form-encoded body", body: []byte("payload=" + string(honest)), contentType: "application/x-www-form-urlencoded", wantStatus: 400, wantCode: "malformed"},
		{name: "hostile body as text/plain", body: []byte(`{"x":1e400}`), contentType: "text/plain", wantStatus: 400, wantCode: "malformed"},
		{name: "GET", method: http.MethodGet, wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "PUT", method: http.MethodPut, body: honest, wantStatus: 405, wantCode: "method_not_allowed"},
		// net/http's check of its 64 KiB has slack (4 KiB, and some tens of KiB more on a
		// connection's later requests), so this block is well over it.
		{name: "header block of 128 KiB", body: honest, header: func(h *hostileEnv, t testing.TB, body []byte) http.Header {
			hdr := ep.auth(h, t, body)
			hdr.Set("X-Padding", strings.Repeat("a", 128<<10))
			return hdr
		}, wantStatus: 431},
		{name: "two different Content-Lengths", raw: "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", wantStatus: 400},
		// net/http reads a request with both as chunked (RFC 9112 6.3) and cannot tell the
		// gateway that Content-Length was sent; the request it reads is refused and the
		// connection closed, so what the Content-Length framing would have hidden after it
		// is never read as a request.
		{name: "Transfer-Encoding and Content-Length, a request smuggled behind", raw: "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 300\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
			"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(honest)) + "\r\n\r\n" + string(honest), rawBody: []byte{}, wantStatus: 400, wantCode: "malformed"},
		{name: "Content-Length shorter than the body, the rest read as a request", raw: "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 10\r\n\r\n" + string(honest), rawBody: honest[:10], wantStatus: 400, wantCode: "malformed"},
	}
}

// TestHostileInput sends each endpoint requests built to confuse or hurt it. Each must
// get a 4xx — a JSON error {"error","code"} unless net/http refused it first — publish
// nothing, and leave the gateway serving: the next honest request is stored.
func TestHostileInput(t *testing.T) {
	h := newHostileEnv(t)
	for _, ep := range []endpoint{serviceTrade, standard} {
		t.Run(ep.name, func(t *testing.T) {
			for _, tc := range append(commonHostileCases(ep), ep.hostile...) {
				t.Run(tc.name, func(t *testing.T) {
					before := h.streamMsgs("EVENTS")
					resp, body := h.send(t, ep, tc)
					checkRefusal(t, resp, body, tc)
					if got := h.streamMsgs("EVENTS"); got != before {
						t.Fatalf("EVENTS went from %d to %d messages on a refused request", before, got)
					}
					h.honest(t, ep, before)
				})
			}
		})
	}
}

// checkRefusal asserts the answer is the case's 4xx with its JSON error.
func checkRefusal(t *testing.T, resp *http.Response, body []byte, tc hostileCase) {
	t.Helper()
	if resp.StatusCode != tc.wantStatus {
		t.Fatalf("status %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
	}
	if tc.wantCode == "" {
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("answer %q is not a JSON object of strings: %v", body, err)
	}
	if len(got) != 2 || got["code"] != tc.wantCode || got["error"] == "" {
		t.Fatalf("answer %s, want exactly {\"error\":…,\"code\":%q}", body, tc.wantCode)
	}
	if !strings.Contains(got["error"], tc.wantError) {
		t.Fatalf("error %q does not say %q", got["error"], tc.wantError)
	}
}

// send sends tc to ep and returns the first answer.
func (h *hostileEnv) send(t *testing.T, ep endpoint, tc hostileCase) (*http.Response, []byte) {
	t.Helper()
	path := cmp.Or(tc.path, ep.path)
	if tc.raw != "" {
		var auth strings.Builder
		for k, vs := range ep.auth(h, t, tc.rawBody) {
			for _, v := range vs {
				auth.WriteString(k + ": " + v + "\r\n")
			}
		}
		return h.sendRaw(t, strings.NewReplacer("{path}", path, "{auth}", auth.String()).Replace(tc.raw))
	}
	var body io.Reader = bytes.NewReader(tc.body)
	if tc.chunked {
		body = io.MultiReader(body) // hides the length: sent chunked
	}
	req, err := http.NewRequest(cmp.Or(tc.method, http.MethodPost), h.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	header := ep.auth
	if tc.header != nil {
		header = tc.header
	}
	for k, v := range header(h, t, tc.body) {
		req.Header[k] = v
	}
	if tc.contentType != "" {
		req.Header.Set("Content-Type", tc.contentType)
	}
	return h.roundTrip(t, req)
}

// roundTrip sends req and reads the whole answer.
func (h *hostileEnv) roundTrip(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// sendRaw writes raw to a new connection and reads the first answer; the connection must
// then be closed by the server.
func (h *hostileEnv) sendRaw(t *testing.T, raw string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(r); err != nil || len(rest) > 0 {
		t.Fatalf("after the answer the connection gave %q (%v), want it closed", rest, err)
	}
	return resp, b
}

// honest sends a new event to ep and checks it is stored: EVENTS holds before+1.
func (h *hostileEnv) honest(t *testing.T, ep endpoint, before uint64) {
	t.Helper()
	body := ep.event(h.next())
	req, err := http.NewRequest(http.MethodPost, h.url+ep.path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = ep.auth(h, t, body)
	resp, b := h.roundTrip(t, req)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"stored":1`)) {
		t.Fatalf("next honest request: %d %s, want 200 and stored", resp.StatusCode, b)
	}
	if got := h.streamMsgs("EVENTS"); got != before+1 {
		t.Fatalf("EVENTS holds %d after the honest request, want %d", got, before+1)
	}
}

// TestSlowAndStalledClients holds connections open the ways a slow or hostile client
// would, against the short hostileLimits. Each is cut off within a bound — with a JSON
// 400 bad_body once the headers are in, since the gateway then answers — nothing is
// published, and an honest request succeeds afterwards and while 64 such clients hang on.
func TestSlowAndStalledClients(t *testing.T) {
	h := newHostileEnv(t)
	addr := strings.TrimPrefix(h.url, "http://")
	const path = "/hooks/demo/servicetrade/" + stToken
	tests := []struct {
		name string
		// head is sent at once; then drip (if any) a byte at a time every 20 ms.
		head, drip string
		// wantStatus is the answer's status, 0 when the server must close the connection
		// unanswered; wantCode its JSON error code, "" when net/http answers before the
		// gateway sees the request (its headers never completed).
		wantStatus int
		wantCode   string
	}{
		{name: "headers never finish", head: "POST " + path + " HTTP/1.1\r\nHost: x\r\n"},
		{name: "headers arrive a byte at a time", head: "P", drip: "OST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", wantStatus: 400},
		{name: "body stops after one byte", head: "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", wantStatus: 400, wantCode: "bad_body"},
		{name: "body arrives a byte at a time", head: "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", drip: strings.Repeat(" ", 1000), wantStatus: 400, wantCode: "bad_body"},
		{name: "chunk shorter than announced", head: "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n{", wantStatus: 400, wantCode: "bad_body"},
		{name: "last chunk never comes", head: "POST " + path + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", wantStatus: 400, wantCode: "bad_body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.streamMsgs("EVENTS")
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			c.SetDeadline(start.Add(10 * time.Second))
			if _, err := io.WriteString(c, tt.head); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			go drip(c, tt.drip, stop)

			r := bufio.NewReader(c)
			resp, err := http.ReadResponse(r, nil)
			took := time.Since(start)
			// RequestWithin is 600 ms; allow a loaded machine its delays.
			if took > 3*time.Second {
				t.Fatalf("the server held the connection %s", took)
			}
			if tt.wantStatus == 0 {
				if err == nil {
					t.Fatalf("answered %d, want the connection closed unanswered", resp.StatusCode)
				}
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatal("the server never closed the connection")
				}
			} else {
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				b, _ := io.ReadAll(resp.Body)
				checkRefusal(t, resp, b, hostileCase{wantStatus: tt.wantStatus, wantCode: tt.wantCode, wantError: "could not read the request body"})
			}
			if got := h.streamMsgs("EVENTS"); got != before {
				t.Fatalf("EVENTS went from %d to %d", before, got)
			}
			h.honest(t, serviceTrade, before)
		})
	}

	t.Run("64 stalled clients at once", func(t *testing.T) {
		before := h.streamMsgs("EVENTS")
		for range 64 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"); err != nil {
				t.Fatal(err)
			}
		}
		h.honest(t, serviceTrade, before)
		h.honest(t, standard, before+1)
	})
}

// drip writes s to c a byte every 20 ms until it is written, c fails, or stop closes.
func drip(c net.Conn, s string, stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(s); i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if _, err := io.WriteString(c, s[i:i+1]); err != nil {
			return
		}
	}
}
