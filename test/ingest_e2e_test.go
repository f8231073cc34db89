package test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/services/gateway"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// lossyProxy stands between the simulated ServiceTrade sender and the gateway. Every
// third request it drops before the gateway sees it (503); every fifth it passes to the
// gateway, which persists the events, and then loses the gateway's 200 (the sender sees a
// 503 and retries what is already stored).
type lossyProxy struct {
	next      http.Handler
	n         atomic.Int64
	dropped   atomic.Int64
	ackLosses atomic.Int64
}

func (p *lossyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := p.n.Add(1)
	switch {
	case n%3 == 0:
		p.dropped.Add(1)
		http.Error(w, "proxy dropped it", http.StatusServiceUnavailable)
	case n%5 == 0:
		rec := httptest.NewRecorder()
		p.next.ServeHTTP(rec, r)
		p.ackLosses.Add(1)
		http.Error(w, "answer lost", http.StatusBadGateway)
	default:
		p.next.ServeHTTP(w, r)
	}
}

// TestSimulatedServiceTradeLandsExactlyOnce runs the simulated sender — batches, its own
// duplicates and reordering, retries — through a lossy proxy into the gateway, and checks
// that EVENTS then holds exactly one message per distinct change that was delivered.
func TestSimulatedServiceTradeLandsExactlyOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	kv, err := tenant.OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenant.Put(ctx, kv, "acme", tenant.Config{ServiceTradeToken: "tok", RatePerSecond: 1e6, Burst: 1e6}); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.Open(ctx, js, gateway.Settings{ApplyStreams: true}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	proxy := &lossyProxy{next: gw}
	hs := httptest.NewServer(proxy)
	defer hs.Close()

	acct, err := servicetrade.NewAccount(servicetrade.AccountConfig{Seed: 7, IDBase: 1<<53 + 1})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	delivered := map[string]bool{} // dedup ids of every change the sender saw delivered
	discarded := 0
	sender, err := servicetrade.NewSender(servicetrade.SenderConfig{
		URL:           hs.URL + "/hooks/acme/servicetrade/tok",
		RetryDelay:    time.Millisecond,
		Attempts:      5, // enough that no delivery is discarded by the proxy alone
		DuplicateRate: 0.2,
		ReorderRate:   0.2,
		Seed:          7,
		OnResult: func(r servicetrade.Result) {
			mu.Lock()
			defer mu.Unlock()
			if !r.Delivered {
				discarded++
				return
			}
			body, err := r.Delivery.Body()
			if err != nil {
				t.Error(err)
				return
			}
			d, err := webhook.ParseServiceTrade(body)
			if err != nil {
				t.Error(err)
				return
			}
			for _, it := range d.Items {
				delivered[it.DedupID("acme")] = true
			}
		},
	}, acct)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1767106000, 0)
	for i := range 150 {
		d := servicetrade.NewDelivery(acct.NextChanges(1+i%5, start.Add(time.Duration(i)*time.Second)), start.Add(time.Duration(i)*time.Second))
		r := sender.Deliver(ctx, d)
		if i%7 == 0 && r.Delivered { // ServiceTrade re-sends some deliveries whole
			sender.Deliver(ctx, d)
		}
	}
	if discarded != 0 {
		t.Fatalf("%d deliveries discarded; the test needs every one delivered", discarded)
	}
	if proxy.dropped.Load() == 0 || proxy.ackLosses.Load() == 0 {
		t.Fatalf("proxy injected no faults: %d dropped, %d answers lost", proxy.dropped.Load(), proxy.ackLosses.Load())
	}
	stream, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.State.Msgs, uint64(len(delivered)); got != want {
		t.Fatalf("EVENTS holds %d messages, want one per distinct delivered change: %d", got, want)
	}
	// Every stored id is one that was delivered, and none is stored twice.
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range len(delivered) {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		id := m.Headers().Get(jetstream.MsgIDHeader)
		if !delivered[id] || seen[id] {
			t.Fatalf("stored id %q: delivered %v, already seen %v", id, delivered[id], seen[id])
		}
		seen[id] = true
	}
	t.Logf("%d changes, %d proxy drops, %d lost answers, sender stats %+v", len(delivered), proxy.dropped.Load(), proxy.ackLosses.Load(), sender.Stats())
}
