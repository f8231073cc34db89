package test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/services/gateway"
)

// TestStandardEndpointTakesIndependentSigners sends the Standard Webhooks endpoint
// deliveries signed by implementations other than ours — Svix's official Go library, with
// Svix's header names (svix-id, svix-timestamp, svix-signature) and with the spec's, and
// openssl as the README's example does — and checks that each is stored once under its id;
// and that Svix's library verifies what our signer signs. Headers of both families in one
// request are refused.
func TestStandardEndpointTakesIndependentSigners(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	// Mid-rotation: the new secret first, the spec's (old) one second.
	const newSecret = "whsec_" + "c3ZpeC1pbmRlcGVuZGVudC1zaWduZXItc2VjcmV0LTMy"
	hs := serveGateway(t, js, "acme", tenant.Config{StandardSecrets: []string{newSecret, loadSecret}})

	body := func(id int) []byte {
		return []byte(fmt.Sprintf(`{"type":"asset.updated","timestamp":"2026-11-29T12:00:00Z","data":{"id":%d,"status":"inactive"}}`, id))
	}
	svixSign := func(t *testing.T, secret, id string, ts time.Time, b []byte) string {
		t.Helper()
		wh, err := svix.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := wh.Sign(id, ts, b)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	headers := func(family, id string, ts time.Time, sig string) http.Header {
		h := http.Header{}
		h.Set(family+"-id", id)
		h.Set(family+"-timestamp", strconv.FormatInt(ts.Unix(), 10))
		h.Set(family+"-signature", sig)
		return h
	}
	tests := []struct {
		name       string
		id         string
		header     func(t *testing.T, id string, b []byte) http.Header
		wantStatus int
	}{
		{name: "svix library, svix-* headers", id: "msg_svix_1", wantStatus: 200, header: func(t *testing.T, id string, b []byte) http.Header {
			return headers("svix", id, time.Now(), svixSign(t, newSecret, id, time.Now(), b))
		}},
		{name: "svix library, old key, svix-* headers", id: "msg_svix_2", wantStatus: 200, header: func(t *testing.T, id string, b []byte) http.Header {
			return headers("svix", id, time.Now(), svixSign(t, loadSecret, id, time.Now(), b))
		}},
		{name: "svix library, webhook-* headers", id: "msg_svix_3", wantStatus: 200, header: func(t *testing.T, id string, b []byte) http.Header {
			return headers("webhook", id, time.Now(), svixSign(t, newSecret, id, time.Now(), b))
		}},
		{name: "svix library, two signatures (rotation)", id: "msg_svix_4", wantStatus: 200, header: func(t *testing.T, id string, b []byte) http.Header {
			now := time.Now()
			return headers("svix", id, now, svixSign(t, "whsec_"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k"), 32)), id, now, b)+" "+svixSign(t, loadSecret, id, now, b))
		}},
		{name: "openssl, as in the README", id: "msg_openssl_1", wantStatus: 200, header: func(t *testing.T, id string, b []byte) http.Header {
			now := time.Now()
			return headers("webhook", id, now, "v1,"+opensslHMAC(t, loadSecret, fmt.Sprintf("%s.%d.%s", id, now.Unix(), b)))
		}},
		{name: "svix library, stale timestamp", id: "msg_svix_5", wantStatus: 401, header: func(t *testing.T, id string, b []byte) http.Header {
			then := time.Now().Add(-6 * time.Minute)
			return headers("svix", id, then, svixSign(t, newSecret, id, then, b))
		}},
		{name: "svix library, mixed families", id: "msg_svix_6", wantStatus: 400, header: func(t *testing.T, id string, b []byte) http.Header {
			now := time.Now()
			h := headers("svix", id, now, svixSign(t, newSecret, id, now, b))
			h.Set("webhook-id", id)
			return h
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body(1000 + i)
			for attempt := range 2 { // a sender's retry is stored once
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/hooks/acme/standard", bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				req.Header = tt.header(t, tt.id, b)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var got struct{ Stored, Duplicates int }
				_ = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if resp.StatusCode != tt.wantStatus {
					t.Fatalf("attempt %d: status %d, want %d", attempt+1, resp.StatusCode, tt.wantStatus)
				}
				if tt.wantStatus == 200 && (got.Stored != 1-attempt || got.Duplicates != attempt) {
					t.Fatalf("attempt %d: stored %d, duplicates %d", attempt+1, got.Stored, got.Duplicates)
				}
			}
			msg, err := getByMsgID(ctx, js, webhook.StandardDedupID("acme", tt.id))
			switch {
			case tt.wantStatus == 200 && err != nil:
				t.Fatalf("not in EVENTS: %v", err)
			case tt.wantStatus == 200 && !strings.Contains(string(msg.Data), fmt.Sprintf(`"entityid":"%d"`, 1000+i)):
				t.Fatalf("stored %s", msg.Data)
			case tt.wantStatus != 200 && err == nil:
				t.Fatalf("refused, yet stored")
			}
		})
	}

	t.Run("svix library verifies our signature", func(t *testing.T) {
		sec, err := webhook.ParseSecret(newSecret)
		if err != nil {
			t.Fatal(err)
		}
		b, now := body(1), time.Now()
		wh, err := svix.NewWebhook(newSecret)
		if err != nil {
			t.Fatal(err)
		}
		for _, family := range []string{"svix", "webhook"} {
			if err := wh.Verify(b, headers(family, "msg_ours", now, sec.Sign("msg_ours", now.Unix(), b))); err != nil {
				t.Errorf("%s-* headers: %v", family, err)
			}
		}
	})
}

// opensslHMAC returns the base64 HMAC-SHA256 of msg under a whsec_ secret, computed by the
// openssl command as the README's example does; the test is skipped without openssl.
func opensslHMAC(t *testing.T, secret, msg string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt", fmt.Sprintf("hexkey:%x", key), "-binary")
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	return base64.StdEncoding.EncodeToString(out)
}

// getByMsgID finds the EVENTS message whose Nats-Msg-Id is id.
func getByMsgID(ctx context.Context, js jetstream.JetStream, id string) (*jetstream.RawStreamMsg, error) {
	s, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Header.Get(jetstream.MsgIDHeader) == id {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no message %s", id)
}

// serveGateway opens a gateway on js, as every binary does, for one tenant with cfg, and
// serves it on a loopback port until the test ends.
func serveGateway(t *testing.T, js jetstream.JetStream, name string, cfg tenant.Config) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	kv, err := tenant.OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenant.Put(ctx, kv, name, cfg); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.Open(ctx, js, gateway.Settings{ApplyStreams: true}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	hs := httptest.NewServer(gw)
	t.Cleanup(hs.Close)
	return hs
}
