package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/webhook"
)

// FuzzWebhook drives both endpoints through the whole handler with a live JetStream:
// standard picks the endpoint; for Standard Webhooks, webhook-id is id and the signature
// is sig, or a valid one for id, now and body when sig is empty, so the fuzzer reaches the
// parser as well as the signature check. Whatever comes in, while JetStream is up:
//   - the answer is never a 5xx, and is JSON: {"error","code"} or the 200 counts;
//   - a refusal publishes nothing, and a 200 grows EVENTS by exactly its "stored".
func FuzzWebhook(f *testing.F) {
	f.Add(false, stDelivery("5b0f3c1e", 1767106195, 2274033731792769, 9007199254740993), "", "")
	f.Add(true, swBody("9223372036854775807"), "msg_1", "")
	f.Add(true, []byte(`{"type":"clockEvent.created","data":{"id":"ce_1","n":[1,{"a":null}]}}`), "msg_2", "")
	f.Add(true, swBody("1"), "msg_3", "v1,"+string(bytes.Repeat([]byte("A"), 64)))
	f.Add(false, stItem(`1,"ID":2`), "", "")

	e := newEnv(f)
	sec, err := webhook.ParseSecret(specSecret)
	if err != nil {
		f.Fatal(err)
	}
	stream, err := e.js.Stream(context.Background(), "EVENTS")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, standard bool, body []byte, id, sig string) {
		path := "/hooks/demo/servicetrade/" + stToken
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		if standard {
			req = httptest.NewRequest(http.MethodPost, "/hooks/demo/standard", bytes.NewReader(body))
			now := e.now.Load()
			if sig == "" {
				sig = sec.Sign(id, now, body)
			}
			req.Header.Set("webhook-id", id)
			req.Header.Set("webhook-timestamp", strconv.FormatInt(now, 10))
			req.Header.Set("webhook-signature", sig)
		}
		before := eventCount(t, stream)
		w := httptest.NewRecorder()
		e.gw.ServeHTTP(w, req)
		after := eventCount(t, stream)

		if w.Code >= 500 {
			t.Fatalf("answered %d %s with JetStream up", w.Code, w.Body)
		}
		var answer struct {
			Error  string `json:"error"`
			Code   string `json:"code"`
			Stored *int   `json:"stored"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer %d %q is not JSON: %v", w.Code, w.Body, err)
		}
		switch {
		case w.Code == http.StatusOK:
			if answer.Stored == nil || after-before != uint64(*answer.Stored) {
				t.Fatalf("200 %s, but EVENTS went from %d to %d", w.Body, before, after)
			}
		case answer.Error == "" || answer.Code == "":
			t.Fatalf("refusal %d %s is not {\"error\",\"code\"}", w.Code, w.Body)
		case after != before:
			t.Fatalf("refused with %d %s, but EVENTS went from %d to %d", w.Code, w.Body, before, after)
		}
	})
}

func eventCount(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
