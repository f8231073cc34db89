package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldstream/fieldstream/pkg/event"
)

// DefaultTolerance is how far webhook-timestamp may be from now, either way, per the
// Standard Webhooks spec.
const DefaultTolerance = 5 * time.Minute

const secretPrefix = "whsec_"

// Secret is a decoded Standard Webhooks signing key. Its String never reveals the key, so
// a Secret that reaches a log or an error shows "whsec_[redacted]".
type Secret struct{ key []byte }

// ParseSecret decodes "whsec_<base64>" (the prefix is optional). The spec's keys are 24 to
// 64 bytes; any other length is an error, as is bad base64.
func ParseSecret(s string) (Secret, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, secretPrefix))
	if err != nil {
		return Secret{}, fmt.Errorf("standard webhooks secret: not base64 after %q", secretPrefix)
	}
	if len(raw) < 24 || len(raw) > 64 {
		return Secret{}, fmt.Errorf("standard webhooks secret: %d bytes, want 24 to 64", len(raw))
	}
	return Secret{key: raw}, nil
}

func (Secret) String() string   { return secretPrefix + "[redacted]" }
func (Secret) GoString() string { return secretPrefix + "[redacted]" }

// Sign returns the v1 signature header value of a delivery: "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>". Senders (and tests) use it; VerifyStandard checks it.
func (s Secret) Sign(id string, timestamp int64, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(s.mac(id, strconv.FormatInt(timestamp, 10), body))
}

func (s Secret) mac(id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// sigChars is the length of a v1 signature: the padded base64 of one SHA-256.
const sigChars = (sha256.Size + 2) / 3 * 4

// StandardHeaders are the three Standard Webhooks headers of one delivery.
type StandardHeaders struct {
	ID        string // webhook-id (or svix-id)
	Timestamp string // webhook-timestamp (or svix-timestamp), Unix seconds
	Signature string // webhook-signature (or svix-signature), space-separated "v1,<base64>" entries
	// Family names the header names the delivery used: "webhook" (the spec's) or "svix"
	// (Svix's older names for the same scheme); "" when it sent none of them.
	Family string
}

// MaxWebhookIDLen is the longest webhook-id ReadStandardHeaders accepts.
const MaxWebhookIDLen = 256

// MaxSignatures is the most space-separated entries a signature header may hold. A sender
// signs with each of its current keys (one, two during a rotation); more entries serve no
// sender and only multiply a verifier's work, so ReadStandardHeaders refuses them and
// VerifyStandard never looks past them.
const MaxSignatures = 8

// maxSignatureLen bounds the signature header: MaxSignatures v1 entries and their spaces.
const maxSignatureLen = MaxSignatures * (len("v1,") + sigChars + 1)

// Header families: the Standard Webhooks spec's names, and Svix's, which many SaaS senders
// still use for the same scheme (the Svix and Standard Webhooks libraries accept both).
var headerFamilies = [...]struct{ family, id, timestamp, signature string }{
	{"webhook", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"},
	{"svix", "Svix-Id", "Svix-Timestamp", "Svix-Signature"},
}

// ReadStandardHeaders takes the three Standard Webhooks headers from h (names are
// case-insensitive, as in any http.Header): webhook-id, webhook-timestamp and
// webhook-signature, or Svix's svix-id, svix-timestamp and svix-signature. A delivery
// uses one family: headers of both are an error, because the two would name two
// deliveries. Each header may appear at most once: a second field line is an error,
// because which one a proxy in front, the signature check and the deduplication would
// each pick is not defined (several signatures belong in one header, space-separated). An
// id must be at most MaxWebhookIDLen bytes of printable ASCII without spaces, since it
// becomes a NATS message id; a signature header at most MaxSignatures entries. A missing
// header is left empty for VerifyStandard to refuse. Errors match ErrMalformed.
func ReadStandardHeaders(h http.Header) (StandardHeaders, error) {
	var out StandardHeaders
	for _, fam := range headerFamilies {
		var got StandardHeaders
		present := false
		for _, f := range []struct {
			name string
			dst  *string
		}{{fam.id, &got.ID}, {fam.timestamp, &got.Timestamp}, {fam.signature, &got.Signature}} {
			switch v := h.Values(f.name); len(v) {
			case 0:
			case 1:
				*f.dst, present = v[0], true
			default:
				return StandardHeaders{}, malformed("%s header sent %d times; send it once", strings.ToLower(f.name), len(v))
			}
		}
		if !present {
			continue
		}
		if out.Family != "" {
			return StandardHeaders{}, malformed("both %s-* and %s-* headers; a delivery sends one family", out.Family, fam.family)
		}
		out = got
		out.Family = fam.family
	}
	if len(out.ID) > MaxWebhookIDLen {
		return StandardHeaders{}, malformed("%s-id longer than %d bytes", out.Family, MaxWebhookIDLen)
	}
	for i := 0; i < len(out.ID); i++ {
		if c := out.ID[i]; c <= ' ' || c > '~' {
			return StandardHeaders{}, malformed("%s-id: want printable ASCII without spaces", out.Family)
		}
	}
	if len(out.Signature) > maxSignatureLen || countFields(out.Signature) > MaxSignatures {
		return StandardHeaders{}, malformed("%s-signature: more than %d signatures", out.Family, MaxSignatures)
	}
	return out, nil
}

// countFields counts s's space-separated fields, as strings.Fields splits them, without
// allocating.
func countFields(s string) int {
	n := 0
	for range strings.FieldsSeq(s) {
		n++
	}
	return n
}

// VerifyStandard checks a Standard Webhooks v1 delivery: the timestamp must be within
// tolerance of now either way, and one of the header's v1 signatures must be the HMAC of
// the delivery under one of secrets (several of each during key rotation). Signatures are
// compared in constant time. Asymmetric "v1a" entries are not supported and never match.
//
// Its work is bounded before it reads the body: the headers and the timestamp are checked
// first, the signatures decoded without the body (a header with more than MaxSignatures
// entries is refused), and then each secret's MAC is computed once, whatever the number of
// signatures. A request costs at most len(secrets) passes over the body.
//
// It returns the parsed timestamp, or an error matching ErrUnauthenticated.
func VerifyStandard(secrets []Secret, h StandardHeaders, body []byte, now time.Time, tolerance time.Duration) (time.Time, error) {
	ts, sigs, err := checkStandard(h, now, tolerance)
	if err != nil {
		return time.Time{}, err
	}
	for _, s := range secrets {
		mac := s.mac(h.ID, h.Timestamp, body)
		for i := range sigs.n {
			if hmac.Equal(sigs.sum[i][:], mac) {
				return ts, nil
			}
		}
	}
	return time.Time{}, ErrNoMatchingSignature
}

// CheckStandardHeaders does every check of VerifyStandard that needs no body and no
// secret — the headers are there, the timestamp is within tolerance, at least one v1
// signature is well formed, at most MaxSignatures entries — so that a caller can refuse a
// delivery before reading its body. Errors match ErrUnauthenticated.
func CheckStandardHeaders(h StandardHeaders, now time.Time, tolerance time.Duration) error {
	_, _, err := checkStandard(h, now, tolerance)
	return err
}

// signatures are the well-formed v1 signatures of a header, decoded.
type signatures struct {
	sum [MaxSignatures][sha256.Size]byte
	n   int
}

func checkStandard(h StandardHeaders, now time.Time, tolerance time.Duration) (time.Time, *signatures, error) {
	if h.ID == "" || h.Timestamp == "" || h.Signature == "" {
		return time.Time{}, nil, ErrMissingSignatureHeaders
	}
	sec, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil {
		return time.Time{}, nil, ErrBadTimestamp
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return time.Time{}, nil, ErrTimestampOutOfTolerance
	}
	sigs := &signatures{}
	// base64.Decode panics when dst is shorter than DecodedLen(len(src)), which for the 44
	// characters of a v1 signature is 33 bytes, one more than a SHA-256 (44 characters
	// without padding decode to 33).
	var buf [sigChars / 4 * 3]byte
	entries := 0
	for entry := range strings.FieldsSeq(h.Signature) {
		if entries++; entries > MaxSignatures {
			return time.Time{}, nil, ErrTooManySignatures
		}
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" || len(sig) != sigChars {
			continue
		}
		n, err := base64.StdEncoding.Decode(buf[:], []byte(sig))
		if err != nil || n != sha256.Size {
			continue
		}
		copy(sigs.sum[sigs.n][:], buf[:n])
		sigs.n++
	}
	if sigs.n == 0 {
		return time.Time{}, nil, ErrNoMatchingSignature
	}
	return ts, sigs, nil
}

// StandardEvent is one Standard Webhooks delivery in the recommended payload shape
// {"type":"asset.updated","timestamp":"<RFC3339>","data":{"id":…,…}}.
type StandardEvent struct {
	Entity   string    // normalized, e.g. "work_order"
	Action   string    // normalized, e.g. "updated"
	EntityID string    // data.id: an int64 in decimal, or a string id folded to a token
	Time     time.Time // payload timestamp; zero when the payload has none
	Data     json.RawMessage
}

// ParseStandard parses the recommended Standard Webhooks payload. type is
// "<entity>.<action>" (a longer dotted type uses its last two parts); data must be an
// object with an "id" member (the key matched exactly), a JSON integer (kept exact, never
// through float64) or a string. The body must be valid UTF-8 and strict JSON, as
// ParseServiceTrade says. Errors match ErrMalformed.
func ParseStandard(body []byte) (StandardEvent, error) {
	if !utf8.Valid(body) {
		return StandardEvent{}, malformed("body is not valid UTF-8")
	}
	var p struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return StandardEvent{}, malformed("body: %v", err)
	}
	if err := checkStrict(body); err != nil {
		return StandardEvent{}, err
	}
	parts := strings.Split(p.Type, ".")
	if len(parts) < 2 {
		return StandardEvent{}, malformed("type %q is not <entity>.<action>", p.Type)
	}
	ev := StandardEvent{
		Entity: event.NormalizeEntity(parts[len(parts)-2]),
		Action: event.NormalizeAction(parts[len(parts)-1], ""),
		Data:   p.Data,
	}
	if ev.Entity == "" || ev.Action == "" {
		return StandardEvent{}, malformed("type %q is not <entity>.<action>", p.Type)
	}
	if p.Timestamp != "" {
		t, err := time.Parse(time.RFC3339Nano, p.Timestamp)
		if err != nil {
			return StandardEvent{}, malformed("timestamp %q is not RFC 3339", p.Timestamp)
		}
		ev.Time = t
	}
	d := bytes.TrimSpace(p.Data)
	if len(d) == 0 || d[0] != '{' {
		return StandardEvent{}, malformed("data must be an object")
	}
	id, err := parseID(memberValue(d, "id"))
	if err != nil {
		return StandardEvent{}, malformed("data.id: %v", err)
	}
	ev.EntityID = id
	return ev, nil
}

// parseID accepts a JSON integer that fits int64 (exactly, as text) or a JSON string that is
// a valid subject token.
func parseID(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", fmt.Errorf("missing")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		if !event.ValidToken(s) {
			return "", fmt.Errorf("%q: want letters, digits, '-' or '_' (at most 128)", s)
		}
		return s, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n <= 0 {
		return "", fmt.Errorf("%s: want a positive 64-bit integer", raw)
	}
	return strconv.FormatInt(n, 10), nil
}

// StandardDedupID is the JetStream message id of a Standard Webhooks delivery: the
// webhook-id, scoped by tenant because two senders may pick the same ids.
func StandardDedupID(tenant, webhookID string) string {
	return "sw:" + tenant + ":" + webhookID
}

type malformedErr struct{ msg string }

func (e *malformedErr) Error() string        { return e.msg }
func (e *malformedErr) Is(target error) bool { return target == ErrMalformed }

func malformed(format string, args ...any) error {
	return &malformedErr{fmt.Sprintf(format, args...)}
}
