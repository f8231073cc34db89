package webhook_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/webhook"
)

// The Standard Webhooks spec's own test vector (domain.md).
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = "1614265330"
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustSecret(t testing.TB, s string) webhook.Secret {
	t.Helper()
	sec, err := webhook.ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func TestSignMatchesSpecVector(t *testing.T) {
	got := mustSecret(t, specSecret).Sign(specID, 1614265330, []byte(specBody))
	if got != specSignature {
		t.Fatalf("Sign = %q, want the spec's %q", got, specSignature)
	}
}

func TestVerifyStandard(t *testing.T) {
	spec := mustSecret(t, specSecret)
	other := mustSecret(t, "whsec_"+strings.Repeat("QUFB", 8)) // 24 bytes of 'A'
	specTime := time.Unix(1614265330, 0)
	tests := []struct {
		name    string
		secrets []webhook.Secret
		h       webhook.StandardHeaders
		body    string
		now     time.Time
		wantErr error
	}{
		{name: "spec vector", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: specSignature}, body: specBody, now: specTime},
		{name: "rotation: new key first, old signature", secrets: []webhook.Secret{other, spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: specSignature}, body: specBody, now: specTime},
		{name: "rotation: several signatures, one valid", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: other.Sign(specID, 1614265330, []byte(specBody)) + " v1a,ZZZZ " + specSignature}, body: specBody, now: specTime},
		{name: "within tolerance, late", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: specSignature}, body: specBody, now: specTime.Add(5 * time.Minute)},
		{name: "within tolerance, early", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: specSignature}, body: specBody, now: specTime.Add(-5 * time.Minute)},
		{name: "stale: replayed after tolerance", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: specSignature}, body: specBody, now: specTime.Add(5*time.Minute + time.Second), wantErr: webhook.ErrTimestampOutOfTolerance},
		{name: "future timestamp", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: specSignature}, body: specBody, now: specTime.Add(-6 * time.Minute), wantErr: webhook.ErrTimestampOutOfTolerance},
		{name: "body changed", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: specSignature}, body: `{"test": 2432232315}`, now: specTime, wantErr: webhook.ErrNoMatchingSignature},
		{name: "id changed", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: "msg_other", Timestamp: specTimestamp, Signature: specSignature}, body: specBody, now: specTime, wantErr: webhook.ErrNoMatchingSignature},
		{name: "wrong key only", secrets: []webhook.Secret{other}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: specSignature}, body: specBody, now: specTime, wantErr: webhook.ErrNoMatchingSignature},
		{name: "timestamp re-signed is still checked against tolerance", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: "1614265331", Signature: specSignature}, body: specBody, now: specTime, wantErr: webhook.ErrNoMatchingSignature},
		{name: "missing signature", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp}, body: specBody, now: specTime, wantErr: webhook.ErrMissingSignatureHeaders},
		{name: "timestamp not a number", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: "yesterday", Signature: specSignature}, body: specBody, now: specTime, wantErr: webhook.ErrBadTimestamp},
		{name: "signature longer than a SHA-256", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: "v1," + strings.Repeat("A", 48)}, body: specBody, now: specTime, wantErr: webhook.ErrNoMatchingSignature},
		{name: "44 base64 characters without padding", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: "v1," + strings.Repeat("0", 44)}, body: specBody, now: specTime, wantErr: webhook.ErrNoMatchingSignature},
		{name: "valid signature with base64 appended", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: specSignature + "AAAA"}, body: specBody, now: specTime, wantErr: webhook.ErrNoMatchingSignature},
		{name: "the valid signature among the most entries", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: strings.Repeat("v1,"+strings.Repeat("A", 43)+"= ", webhook.MaxSignatures-1) + specSignature}, body: specBody, now: specTime},
		{name: "the valid signature past the most entries", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: strings.Repeat("v1,"+strings.Repeat("A", 43)+"= ", webhook.MaxSignatures) + specSignature}, body: specBody, now: specTime, wantErr: webhook.ErrTooManySignatures},
		{name: "1,300 signatures", secrets: []webhook.Secret{spec, other}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: strings.Repeat(other.Sign("x", 1, nil)+" ", 1300)}, body: specBody, now: specTime, wantErr: webhook.ErrTooManySignatures},
		{name: "garbage signature entries", secrets: []webhook.Secret{spec}, h: webhook.StandardHeaders{ID: specID, Timestamp: specTimestamp, Signature: "v1 v1, v2,abc v1,!!!"}, body: specBody, now: specTime, wantErr: webhook.ErrNoMatchingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhook.VerifyStandard(tt.secrets, tt.h, []byte(tt.body), tt.now, webhook.DefaultTolerance)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil && !errors.Is(err, webhook.ErrUnauthenticated) {
				t.Fatalf("err %v does not match ErrUnauthenticated", err)
			}
		})
	}
}

func TestParseSecret(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "spec", in: specSecret},
		{name: "no prefix", in: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		{name: "not base64", in: "whsec_%%%", wantErr: true},
		{name: "too short", in: "whsec_QUFBQQ==", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := webhook.ParseSecret(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), strings.TrimPrefix(tt.in, "whsec_")) {
				t.Errorf("error %q reveals the secret", err)
			}
			if strings.Contains(s.String(), "MfKQ") {
				t.Errorf("String() reveals the key: %s", s)
			}
		})
	}
}

func TestParseStandard(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantEntity string
		wantAction string
		wantID     string
		wantErr    error
	}{
		{name: "recommended shape", body: `{"type":"asset.updated","timestamp":"2026-01-02T03:04:05Z","data":{"id":42,"status":"active"}}`, wantEntity: "asset", wantAction: "updated", wantID: "42"},
		{name: "id above 2^53 kept exact", body: `{"type":"job.created","data":{"id":9007199254740993}}`, wantEntity: "work_order", wantAction: "created", wantID: "9007199254740993"},
		{name: "max int64", body: `{"type":"job.created","data":{"id":9223372036854775807}}`, wantEntity: "work_order", wantAction: "created", wantID: "9223372036854775807"},
		{name: "string id", body: `{"type":"clockEvent.created","data":{"id":"ce_123"}}`, wantEntity: "time_entry", wantAction: "created", wantID: "ce_123"},
		{name: "dotted type uses last two", body: `{"type":"com.acme.location.deleted","data":{"id":7}}`, wantEntity: "location", wantAction: "deleted", wantID: "7"},
		{name: "id overflows int64", body: `{"type":"job.created","data":{"id":9223372036854775808}}`, wantErr: webhook.ErrMalformed},
		{name: "float id", body: `{"type":"job.created","data":{"id":1.5}}`, wantErr: webhook.ErrMalformed},
		{name: "exponent id", body: `{"type":"job.created","data":{"id":1e3}}`, wantErr: webhook.ErrMalformed},
		{name: "id with subject wildcard", body: `{"type":"job.created","data":{"id":"a.>"}}`, wantErr: webhook.ErrMalformed},
		{name: "no id", body: `{"type":"job.created","data":{}}`, wantErr: webhook.ErrMalformed},
		{name: "data not object", body: `{"type":"job.created","data":[1]}`, wantErr: webhook.ErrMalformed},
		{name: "type without action", body: `{"type":"job","data":{"id":1}}`, wantErr: webhook.ErrMalformed},
		{name: "bad timestamp", body: `{"type":"job.created","timestamp":"noon","data":{"id":1}}`, wantErr: webhook.ErrMalformed},
		{name: "not json", body: `{"type":`, wantErr: webhook.ErrMalformed},
		{name: "invalid utf-8", body: "{\"type\":\"job.created\",\"data\":{\"id\":1,\"n\":\"\xff\"}}", wantErr: webhook.ErrMalformed},
		{name: "two ids", body: `{"type":"job.created","data":{"id":1,"id":2}}`, wantErr: webhook.ErrMalformed},
		{name: "id and ID", body: `{"type":"job.created","data":{"id":1,"ID":2}}`, wantErr: webhook.ErrMalformed},
		{name: "two types", body: `{"type":"job.created","type":"job.deleted","data":{"id":1}}`, wantErr: webhook.ErrMalformed},
		{name: "escaped duplicate type", body: `{"type":"job.created","\u0074ype":"job.deleted","data":{"id":1}}`, wantErr: webhook.ErrMalformed},
		{name: "two data", body: `{"type":"job.created","data":{"id":1},"data":{"id":2}}`, wantErr: webhook.ErrMalformed},
		{name: "id -0", body: `{"type":"job.created","data":{"id":-0}}`, wantErr: webhook.ErrMalformed},
		{name: "id 1e400", body: `{"type":"job.created","data":{"id":1e400}}`, wantErr: webhook.ErrMalformed},
		{name: "id 1.0", body: `{"type":"job.created","data":{"id":1.0}}`, wantErr: webhook.ErrMalformed},
		{name: "id 2^64", body: `{"type":"job.created","data":{"id":18446744073709551616}}`, wantErr: webhook.ErrMalformed},
		{name: "1e400 beside the id", body: `{"type":"job.created","data":{"id":1,"amount":1e400}}`, wantErr: webhook.ErrMalformed},
		{name: "nested 65 deep in data", body: `{"type":"job.created","data":{"id":1,"x":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}}`, wantErr: webhook.ErrMalformed},
		{name: "nested past encoding/json's limit", body: `{"type":"job.created","data":{"id":1,"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}}`, wantErr: webhook.ErrMalformed},
		{name: "lone surrogate escape", body: `{"type":"job.created","data":{"id":1,"name":"\ud800"}}`, wantErr: webhook.ErrMalformed},
		{name: "nested 64 deep", body: `{"type":"job.created","data":{"id":1,"x":` + strings.Repeat("[", 62) + strings.Repeat("]", 62) + `}}`, wantEntity: "work_order", wantAction: "created", wantID: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := webhook.ParseStandard([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if ev.Entity != tt.wantEntity || ev.Action != tt.wantAction || ev.EntityID != tt.wantID {
				t.Errorf("got %s/%s/%s, want %s/%s/%s", ev.Entity, ev.Action, ev.EntityID, tt.wantEntity, tt.wantAction, tt.wantID)
			}
		})
	}
}

func TestReadStandardHeaders(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name    string
		h       http.Header
		want    webhook.StandardHeaders
		wantErr error
	}{
		{name: "all three", h: hdr("webhook-id", "msg_1", "WEBHOOK-TIMESTAMP", "1", "Webhook-Signature", "v1,a v1,b"), want: webhook.StandardHeaders{ID: "msg_1", Timestamp: "1", Signature: "v1,a v1,b", Family: "webhook"}},
		{name: "svix's names", h: hdr("svix-id", "msg_1", "SVIX-TIMESTAMP", "1", "Svix-Signature", "v1,a v1,b"), want: webhook.StandardHeaders{ID: "msg_1", Timestamp: "1", Signature: "v1,a v1,b", Family: "svix"}},
		{name: "none", h: hdr("content-type", "application/json"), want: webhook.StandardHeaders{}},
		{name: "missing ones stay empty", h: hdr("webhook-id", "msg_1"), want: webhook.StandardHeaders{ID: "msg_1", Family: "webhook"}},
		{name: "longest id", h: hdr("webhook-id", strings.Repeat("m", webhook.MaxWebhookIDLen)), want: webhook.StandardHeaders{ID: strings.Repeat("m", webhook.MaxWebhookIDLen), Family: "webhook"}},
		{name: "most signatures", h: hdr("webhook-signature", strings.TrimSpace(strings.Repeat(specSignature+" ", webhook.MaxSignatures))), want: webhook.StandardHeaders{Signature: strings.TrimSpace(strings.Repeat(specSignature+" ", webhook.MaxSignatures)), Family: "webhook"}},
		{name: "one signature too many", h: hdr("webhook-signature", strings.Repeat("v1,x ", webhook.MaxSignatures+1)), wantErr: webhook.ErrMalformed},
		{name: "64 KiB of signatures", h: hdr("webhook-signature", strings.Repeat(specSignature+" ", 64<<10/48)), wantErr: webhook.ErrMalformed},
		{name: "a signature padded with 64 KiB of spaces", h: hdr("webhook-signature", specSignature+strings.Repeat(" ", 64<<10)), wantErr: webhook.ErrMalformed},
		{name: "both families", h: hdr("webhook-id", "msg_1", "svix-timestamp", "1"), wantErr: webhook.ErrMalformed},
		{name: "both families, all six", h: hdr("webhook-id", "msg_1", "webhook-timestamp", "1", "webhook-signature", "v1,a", "svix-id", "msg_1", "svix-timestamp", "1", "svix-signature", "v1,a"), wantErr: webhook.ErrMalformed},
		{name: "two svix ids", h: hdr("svix-id", "msg_1", "Svix-Id", "msg_2"), wantErr: webhook.ErrMalformed},
		{name: "svix id with a space", h: hdr("svix-id", "msg 1"), wantErr: webhook.ErrMalformed},
		{name: "two ids", h: hdr("webhook-id", "msg_1", "webhook-id", "msg_2"), wantErr: webhook.ErrMalformed},
		{name: "two ids in other cases", h: hdr("webhook-id", "msg_1", "WEBHOOK-ID", "msg_1"), wantErr: webhook.ErrMalformed},
		{name: "two timestamps", h: hdr("webhook-timestamp", "1", "webhook-timestamp", "2"), wantErr: webhook.ErrMalformed},
		{name: "two signature lines", h: hdr("webhook-signature", "v1,a", "webhook-signature", "v1,b"), wantErr: webhook.ErrMalformed},
		{name: "id too long", h: hdr("webhook-id", strings.Repeat("m", webhook.MaxWebhookIDLen+1)), wantErr: webhook.ErrMalformed},
		{name: "id with a space", h: hdr("webhook-id", "msg 1"), wantErr: webhook.ErrMalformed},
		{name: "id with a non-ASCII byte", h: hdr("webhook-id", "msg_\xff"), wantErr: webhook.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := webhook.ReadStandardHeaders(tt.h)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
