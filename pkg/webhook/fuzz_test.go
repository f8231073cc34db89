package webhook_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/webhook"
)

// FuzzParseServiceTrade: any input either parses into items whose subjects are valid, or
// fails with ErrMalformed; it never panics.
func FuzzParseServiceTrade(f *testing.F) {
	f.Add([]byte(domainSample))
	f.Add([]byte(`{"messageId":"m","data":[{"action":"created","timestamp":"1","entity":{"type":"clock","id":"2274033731792769"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := webhook.ParseServiceTrade(body)
		if err != nil {
			if !errors.Is(err, webhook.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		for _, it := range d.Items {
			if _, err := event.Subject("t", it.Entity, strconv.FormatInt(it.EntityID, 10), it.Action); err != nil {
				t.Fatalf("parsed item gives no valid subject: %v", err)
			}
		}
	})
}

// FuzzParseStandard: the same contract for Standard Webhooks payloads.
func FuzzParseStandard(f *testing.F) {
	f.Add([]byte(`{"type":"asset.updated","timestamp":"2026-01-02T03:04:05Z","data":{"id":42}}`))
	f.Add([]byte(`{"type":"job.created","data":{"id":"ce_1"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := webhook.ParseStandard(body)
		if err != nil {
			if !errors.Is(err, webhook.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if _, err := event.Subject("t", ev.Entity, ev.EntityID, ev.Action); err != nil {
			t.Fatalf("parsed event gives no valid subject: %v", err)
		}
	})
}

// FuzzVerifyStandard: only the right signature verifies; anything else is
// ErrUnauthenticated and never a panic.
func FuzzVerifyStandard(f *testing.F) {
	f.Add(specID, specTimestamp, specSignature, []byte(specBody))
	f.Add("", "", "", []byte{})
	f.Add(specID, "-1", "v1,,v1 v1a,x", []byte("x"))
	sec := mustSecret(f, specSecret)
	now := time.Unix(1614265330, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		_, err := webhook.VerifyStandard([]webhook.Secret{sec}, webhook.StandardHeaders{ID: id, Timestamp: ts, Signature: sig}, body, now, webhook.DefaultTolerance)
		if err != nil && !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Fatalf("error %v is not ErrUnauthenticated", err)
		}
		n, perr := strconv.ParseInt(ts, 10, 64)
		if err == nil && (perr != nil || sig == "" || sec.Sign(id, n, body) == "" || n < now.Unix()-300 || n > now.Unix()+300) {
			t.Fatalf("verified a delivery it should not have: id=%q ts=%q sig=%q", id, ts, sig)
		}
	})
}
