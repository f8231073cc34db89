package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/pkg/webhook"
)

// TestLargestEventIsDeadLettered stores the largest event the gateway accepts from a
// nats-server with the default max_payload of 1 MiB, as deploy/nats-server.conf runs it
// (found by asking the gateway: one byte more is refused 413) and has a consumer fail it, permanently and by
// exhausting its deliveries, with an error text far longer than a dead letter keeps. Its
// dead letter must be stored, whole payload and provenance: a dead letter that did not fit
// NATS's max_payload was never stored, and the event looped on redelivery until EVENTS
// aged it out.
func TestLargestEventIsDeadLettered(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, js := natstest.Connect(t, srv)
	if mp := nc.MaxPayload(); mp != 1<<20 {
		t.Fatalf("max_payload %d, want the default 1 MiB", mp)
	}
	hs := serveGateway(t, js, "acme", tenant.Config{StandardSecrets: []string{loadSecret}, RatePerSecond: 1e6, Burst: 1e6})
	secret, err := webhook.ParseSecret(loadSecret)
	if err != nil {
		t.Fatal(err)
	}
	send := func(id, pad int) int {
		body := []byte(fmt.Sprintf(`{"type":"asset.updated","data":{"id":%d,"notes":"%s"}}`, id, strings.Repeat("x", pad)))
		if len(body) > 1<<20 {
			return http.StatusRequestEntityTooLarge
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/hooks/acme/standard", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		wid, now := fmt.Sprintf("msg_%d_%d", id, pad), time.Now().Unix()
		req.Header.Set("webhook-id", wid)
		req.Header.Set("webhook-timestamp", fmt.Sprint(now))
		req.Header.Set("webhook-signature", secret.Sign(wid, now, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The largest padding accepted, by bisection over the last 64 KiB below the body limit;
	// each probe is its own entity, so that only the largest is consumed below.
	lo, hi := 1<<20-64<<10, 1<<20 // lo accepted, hi refused
	if s := send(200, lo); s != http.StatusOK {
		t.Fatalf("a body of %d bytes: %d", lo, s)
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		switch s := send(201, mid); s {
		case http.StatusOK:
			lo = mid
		case http.StatusRequestEntityTooLarge:
			hi = mid
		default:
			t.Fatalf("padding %d: status %d", mid, s)
		}
	}
	for i, tt := range []struct {
		name      string
		fail      error
		wantClass string
	}{
		{"permanent", failure.Permanent(errors.New("registry refused the asset: " + strings.Repeat("why ", 16<<10))), consumer.ClassPermanent},
		{"exhausted", errors.New("registry unavailable: " + strings.Repeat("why ", 16<<10)), consumer.ClassExhausted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := 100 + i
			if s := send(id, lo); s != http.StatusOK {
				t.Fatalf("the largest accepted event (padding %d): %d", lo, s)
			}
			if s := send(id+200, lo+1); s != http.StatusRequestEntityTooLarge {
				t.Fatalf("one byte more (padding %d): %d, want 413", lo+1, s)
			}
			name := "large-" + tt.name
			p, err := consumer.NewPipeline(ctx, js, consumer.Config{Name: name, FilterSubjects: []string{fmt.Sprintf("events.acme.asset.%d.>", id)},
				MaxDeliver: 2, NakDelay: 50 * time.Millisecond, NakDelayMax: 100 * time.Millisecond, Logger: zerolog.Nop()},
				func(_ context.Context, b []*consumer.Message) []error {
					errs := make([]error, len(b))
					for i := range errs {
						errs[i] = tt.fail
					}
					return errs
				}, consumer.PipelineOptions{Retry: consumer.RetryConfig{InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, Budget: 10 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- p.Run(runCtx) }()
			defer func() { stop(); <-done }()
			dlq, err := js.Stream(ctx, "DLQ")
			if err != nil {
				t.Fatal(err)
			}
			var letter *jetstream.RawStreamMsg
			natstest.Eventually(t, 30*time.Second, "the largest event dead-lettered", func() bool {
				letter, err = dlq.GetLastMsgForSubject(ctx, "dlq."+name+".>")
				return err == nil
			})
			if got := letter.Header.Get(consumer.HeaderDLQClass); got != tt.wantClass {
				t.Errorf("class %q, want %q", got, tt.wantClass)
			}
			if e := letter.Header.Get(consumer.HeaderDLQError); !strings.HasPrefix(e, tt.fail.Error()[:40]) || len(e) > 1024 {
				t.Errorf("error header of %d bytes: %.80q…", len(e), e)
			}
			if !bytes.Contains(letter.Data, []byte(strings.Repeat("x", lo))) {
				t.Errorf("the dead letter lost the payload (%d bytes)", len(letter.Data))
			}
		})
	}
}
