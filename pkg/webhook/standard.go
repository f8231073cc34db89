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
	ID        string // webhook-id
	Timestamp string // webhook-timestamp, Unix seconds
	Signature string // webhook-signature, space-separated "v1,<base64>" entries
}

// MaxWebhookIDLen is the longest webhook-id ReadStandardHeaders accepts.
const MaxWebhookIDLen = 256

// ReadStandardHeaders takes the three Standard Webhooks headers from h (names are
// case-insensitive, as in any http.Header). Each may appear at most once: a second
// webhook-id, webhook-timestamp or webhook-signature field line is an error, because which
// one a proxy in front, the signature check and the deduplication would each pick is not
// defined (several signatures belong in one header, space-separated). A webhook-id must be
// at most MaxWebhookIDLen bytes of printable ASCII without spaces, since it becomes a
// NATS message id. A missing header is left empty for VerifyStandard to refuse.
// Errors match ErrMalformed.
func ReadStandardHeaders(h http.Header) (StandardHeaders, error) {
	var out StandardHeaders
	for _, f := range []struct {
		name string
		dst  *string
	}{{"Webhook-Id", &out.ID}, {"Webhook-Timestamp", &out.Timestamp}, {"Webhook-Signature", &out.Signature}} {
		switch v := h.Values(f.name); len(v) {
		case 0:
		case 1:
			*f.dst = v[0]
		default:
			return StandardHeaders{}, malformed("%s header sent %d times; send it once", strings.ToLower(f.name), len(v))
		}
	}
	if len(out.ID) > MaxWebhookIDLen {
		return StandardHeaders{}, malformed("webhook-id longer than %d bytes", MaxWebhookIDLen)
	}
	for i := 0; i < len(out.ID); i++ {
		if c := out.ID[i]; c <= ' ' || c > '~' {
			return StandardHeaders{}, malformed("webhook-id: want printable ASCII without spaces")
		}
	}
	return out, nil
}

// VerifyStandard checks a Standard Webhooks v1 delivery: the timestamp must be within
// tolerance of now either way, and one of the header's v1 signatures must be the HMAC of
// the delivery under one of secrets (several of each during key rotation). Signatures are
// compared in constant time. Asymmetric "v1a" entries are not supported and never match.
//
// It returns the parsed timestamp, or an error matching ErrUnauthenticated.
func VerifyStandard(secrets []Secret, h StandardHeaders, body []byte, now time.Time, tolerance time.Duration) (time.Time, error) {
	if h.ID == "" || h.Timestamp == "" || h.Signature == "" {
		return time.Time{}, ErrMissingSignatureHeaders
	}
	sec, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil {
		return time.Time{}, ErrBadTimestamp
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return time.Time{}, ErrTimestampOutOfTolerance
	}
	// base64.Decode panics when dst is shorter than DecodedLen(len(src)), which for the 44
	// characters of a v1 signature is 33 bytes, one more than a SHA-256 (44 characters
	// without padding decode to 33).
	var buf [sigChars / 4 * 3]byte
	for _, entry := range strings.Fields(h.Signature) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		if len(sig) != sigChars {
			continue
		}
		n, err := base64.StdEncoding.Decode(buf[:], []byte(sig))
		if err != nil || n != sha256.Size {
			continue
		}
		for _, s := range secrets {
			if hmac.Equal(buf[:n], s.mac(h.ID, h.Timestamp, body)) {
				return ts, nil
			}
		}
	}
	return time.Time{}, ErrNoMatchingSignature
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
