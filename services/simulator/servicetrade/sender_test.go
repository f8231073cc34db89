package servicetrade_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// hook is a webhook receiver that records every request and checks that its body is a
// delivery the gateway's parser accepts.
type hook struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []hookRequest
}

type hookRequest struct {
	at        time.Time
	body      []byte
	messageID string
	items     int
}

// newHook starts a receiver that answers the n-th request (from 0) with reply(n, w, r),
// or 200 if reply is nil.
func newHook(tb testing.TB, reply func(n int, w http.ResponseWriter, r *http.Request)) *hook {
	tb.Helper()
	h := &hook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return // the sender gave up
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			tb.Errorf("%s with Content-Type %q, want a POST of application/json", r.Method, r.Header.Get("Content-Type"))
		}
		d, err := webhook.ParseServiceTrade(body)
		if err != nil {
			tb.Errorf("ParseServiceTrade(%s): %v", body, err)
		}
		h.mu.Lock()
		n := len(h.reqs)
		h.reqs = append(h.reqs, hookRequest{at: time.Now(), body: body, messageID: d.MessageID, items: len(d.Items)})
		h.mu.Unlock()
		if reply != nil {
			reply(n, w, r)
		}
	}))
	tb.Cleanup(h.Close)
	return h
}

func (h *hook) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.reqs)
}

// hang makes replyWith block until the sender gives up on the request.
const hang = -1

// replyWith answers the n-th request with statuses[n], repeating the last status.
func replyWith(statuses ...int) func(int, http.ResponseWriter, *http.Request) {
	return func(n int, w http.ResponseWriter, r *http.Request) {
		s := statuses[min(n, len(statuses)-1)]
		if s == hang {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(s)
	}
}

func newSender(tb testing.TB, cfg servicetrade.SenderConfig, a *servicetrade.Account) *servicetrade.Sender {
	tb.Helper()
	s, err := servicetrade.NewSender(cfg, a)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// waitFor polls cond until it holds, failing the test after a generous deadline.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func sampleDelivery(tb testing.TB, items int) servicetrade.Delivery {
	tb.Helper()
	a := newAccount(tb, servicetrade.AccountConfig{Seed: 1})
	return servicetrade.NewDelivery(a.NextChanges(items, t0), t0)
}

func TestSenderConfigValidate(t *testing.T) {
	const url = "http://127.0.0.1:8080/hooks/demo/servicetrade/dev-token"
	tests := []struct {
		name    string
		cfg     servicetrade.SenderConfig
		wantErr bool
	}{
		{name: "only URL", cfg: servicetrade.SenderConfig{URL: url}},
		{name: "rates off", cfg: servicetrade.SenderConfig{URL: url, DuplicateRate: servicetrade.Never, ReorderRate: servicetrade.Never}},
		{name: "rates always", cfg: servicetrade.SenderConfig{URL: "https://hooks.example/x", DuplicateRate: 1, ReorderRate: 1, EventsPerSecond: 0.5}},
		{name: "no URL", cfg: servicetrade.SenderConfig{}, wantErr: true},
		{name: "relative URL", cfg: servicetrade.SenderConfig{URL: "/hooks/demo"}, wantErr: true},
		{name: "ftp URL", cfg: servicetrade.SenderConfig{URL: "ftp://example.com/x"}, wantErr: true},
		{name: "negative rate", cfg: servicetrade.SenderConfig{URL: url, EventsPerSecond: -1}, wantErr: true},
		{name: "infinite rate", cfg: servicetrade.SenderConfig{URL: url, EventsPerSecond: math.Inf(1)}, wantErr: true},
		{name: "negative batch", cfg: servicetrade.SenderConfig{URL: url, MaxBatch: -1}, wantErr: true},
		{name: "negative timeout", cfg: servicetrade.SenderConfig{URL: url, Timeout: -time.Second}, wantErr: true},
		{name: "negative attempts", cfg: servicetrade.SenderConfig{URL: url, Attempts: -3}, wantErr: true},
		{name: "duplicate rate above 1", cfg: servicetrade.SenderConfig{URL: url, DuplicateRate: 1.5}, wantErr: true},
		{name: "reorder rate NaN", cfg: servicetrade.SenderConfig{URL: url, ReorderRate: math.NaN()}, wantErr: true},
		{name: "more URLs", cfg: servicetrade.SenderConfig{URL: url, MoreURLs: []string{"http://127.0.0.1:8081/hooks/demo/servicetrade/dev-token"}}},
		{name: "a relative further URL", cfg: servicetrade.SenderConfig{URL: url, MoreURLs: []string{"/hooks"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
			if _, err := servicetrade.NewSender(tt.cfg, nil); (err != nil) != tt.wantErr {
				t.Fatalf("NewSender() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestDeliver(t *testing.T) {
	tests := []struct {
		name          string
		replies       []int // per attempt, the last repeating; hang = no reply
		wantAttempts  int
		wantDelivered bool
		wantStatus    int
		wantErr       error // nil, or what Result.Err must match
		wantCause     error // what Result.Err must also match, if set
	}{
		{name: "200 at once", replies: []int{200}, wantAttempts: 1, wantDelivered: true, wantStatus: 200},
		{name: "500 twice then 200", replies: []int{500, 500, 200}, wantAttempts: 3, wantDelivered: true, wantStatus: 200},
		{name: "503 then 204", replies: []int{503, 204}, wantAttempts: 2, wantDelivered: true, wantStatus: 204},
		{name: "always 500 is discarded", replies: []int{500}, wantAttempts: 3, wantStatus: 500, wantErr: servicetrade.ErrDiscarded},
		{name: "401 counts as delivered", replies: []int{401}, wantAttempts: 1, wantDelivered: true, wantStatus: 401},
		{name: "499 counts as delivered", replies: []int{499}, wantAttempts: 1, wantDelivered: true, wantStatus: 499},
		{name: "hang then 200", replies: []int{hang, 200}, wantAttempts: 2, wantDelivered: true, wantStatus: 200},
		{name: "always hangs is discarded", replies: []int{hang}, wantAttempts: 3, wantStatus: 0, wantErr: servicetrade.ErrDiscarded, wantCause: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHook(t, replyWith(tt.replies...))
			var results []servicetrade.Result
			s := newSender(t, servicetrade.SenderConfig{
				URL:        h.URL + "/hooks/demo/servicetrade/dev-token",
				Timeout:    100 * time.Millisecond,
				RetryDelay: time.Millisecond,
				OnResult:   func(r servicetrade.Result) { results = append(results, r) },
			}, nil)
			d := sampleDelivery(t, 3)

			res := s.Deliver(context.Background(), d)

			if res.Attempts != tt.wantAttempts || res.Delivered != tt.wantDelivered || res.Status != tt.wantStatus {
				t.Errorf("Deliver() = {Attempts:%d Delivered:%v Status:%d}, want {%d %v %d}",
					res.Attempts, res.Delivered, res.Status, tt.wantAttempts, tt.wantDelivered, tt.wantStatus)
			}
			if tt.wantErr == nil && res.Err != nil || !errors.Is(res.Err, tt.wantErr) {
				t.Errorf("Err = %v, want %v", res.Err, tt.wantErr)
			}
			if tt.wantCause != nil && !errors.Is(res.Err, tt.wantCause) {
				t.Errorf("Err = %v, want it to wrap %v", res.Err, tt.wantCause)
			}
			if res.Delivery.MessageID != d.MessageID || res.Duplicate {
				t.Errorf("Result is about %+v (duplicate %v), want %s", res.Delivery, res.Duplicate, d.MessageID)
			}
			if len(results) != 1 || results[0].Attempts != res.Attempts {
				t.Errorf("OnResult got %d results, want this one", len(results))
			}

			want, err := d.Body()
			if err != nil {
				t.Fatal(err)
			}
			reqs := h.requests()
			if len(reqs) != tt.wantAttempts {
				t.Fatalf("hook got %d requests, want %d", len(reqs), tt.wantAttempts)
			}
			for i, r := range reqs {
				if !bytes.Equal(r.body, want) {
					t.Errorf("attempt %d sent %s, want the same body every time: %s", i+1, r.body, want)
				}
			}

			st := s.Stats()
			wantStats := servicetrade.Stats{Deliveries: 1, Attempts: uint64(tt.wantAttempts)}
			if tt.wantDelivered {
				wantStats.Delivered, wantStats.EventsDelivered = 1, 3
			} else {
				wantStats.Discarded, wantStats.EventsDiscarded = 1, 3
			}
			if st != wantStats {
				t.Errorf("Stats() = %+v, want %+v", st, wantStats)
			}
		})
	}
}

func TestDeliverConnectionRefused(t *testing.T) {
	h := newHook(t, nil)
	url := h.URL
	h.Close()
	s := newSender(t, servicetrade.SenderConfig{URL: url, RetryDelay: time.Millisecond}, nil)

	res := s.Deliver(context.Background(), sampleDelivery(t, 1))

	if res.Delivered || res.Attempts != 3 || res.Status != 0 || !errors.Is(res.Err, servicetrade.ErrDiscarded) {
		t.Errorf("Deliver() = %+v, want discarded after 3 attempts with no status", res)
	}
}

func TestDeliverRetryDelayGrows(t *testing.T) {
	h := newHook(t, replyWith(500))
	const delay = 40 * time.Millisecond
	s := newSender(t, servicetrade.SenderConfig{URL: h.URL, RetryDelay: delay, Attempts: 4}, nil)

	s.Deliver(context.Background(), sampleDelivery(t, 1))

	reqs := h.requests()
	if len(reqs) != 4 {
		t.Fatalf("hook got %d requests, want 4", len(reqs))
	}
	for i, want := range []time.Duration{delay, 2 * delay, 4 * delay} {
		if gap := reqs[i+1].at.Sub(reqs[i].at); gap < want {
			t.Errorf("gap before attempt %d = %v, want at least %v", i+2, gap, want)
		}
	}
}

func TestDeliverStopsWithContext(t *testing.T) {
	t.Run("canceled before", func(t *testing.T) {
		h := newHook(t, nil)
		s := newSender(t, servicetrade.SenderConfig{URL: h.URL}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()

		res := s.Deliver(ctx, sampleDelivery(t, 1))

		if res.Delivered || res.Attempts != 0 || !errors.Is(res.Err, context.Canceled) {
			t.Errorf("Deliver() = %+v, want canceled with no attempt", res)
		}
		if n := len(h.requests()); n != 0 {
			t.Errorf("hook got %d requests, want none", n)
		}
		if st := s.Stats(); st.Canceled != 1 || st.Discarded != 0 || st.Deliveries != 1 {
			t.Errorf("Stats() = %+v", st)
		}
	})
	t.Run("canceled while waiting to retry", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h := newHook(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			cancel()
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		s := newSender(t, servicetrade.SenderConfig{URL: h.URL, RetryDelay: time.Hour}, nil)

		res := s.Deliver(ctx, sampleDelivery(t, 1))

		if res.Delivered || res.Attempts != 1 || !errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, servicetrade.ErrDiscarded) {
			t.Errorf("Deliver() = %+v, want canceled after 1 attempt", res)
		}
	})
}

// runSender runs s until stop reports true (polled), then cancels it and returns Run's error.
func runSender(tb testing.TB, s *servicetrade.Sender, stop func() bool) error {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(tb, "the sender to make progress", stop)
	cancel()
	return <-done
}

func TestRunDeliversAtRate(t *testing.T) {
	h := newHook(t, nil)
	const rate = 200.0
	s := newSender(t, servicetrade.SenderConfig{
		URL:             h.URL,
		EventsPerSecond: rate,
		DuplicateRate:   servicetrade.Never,
		ReorderRate:     servicetrade.Never,
		Seed:            1,
	}, newAccount(t, servicetrade.AccountConfig{Seed: 1}))

	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Run(ctx)
	elapsed := time.Since(start)

	if err != nil {
		t.Fatalf("Run() = %v, want nil once its context ends", err)
	}
	st := s.Stats()
	// Run never gets ahead of the rate; a slow machine may make it fall behind.
	most := rate * elapsed.Seconds()
	if got := float64(st.EventsDelivered); got > most || got < most/2-servicetrade.DefaultMaxBatch {
		t.Errorf("delivered %v events in %v, want about %.0f", got, elapsed, most)
	}
	// Run has returned, so nothing is in flight any more: every delivery has ended, and
	// every attempt reached the hook but perhaps the one cut short when Run stopped.
	if st.Deliveries != st.Delivered+st.Discarded+st.Canceled || st.Discarded != 0 || st.Canceled > 1 {
		t.Errorf("Stats() = %+v", st)
	}
	reqs := h.requests()
	if n := uint64(len(reqs)); n > st.Attempts || n < st.Attempts-st.Canceled {
		t.Errorf("hook got %d requests, stats count %d attempts and %d canceled", n, st.Attempts, st.Canceled)
	}
	items := 0
	for _, r := range reqs {
		if r.items < 1 || r.items > servicetrade.DefaultMaxBatch {
			t.Errorf("delivery of %d items, want 1..%d", r.items, servicetrade.DefaultMaxBatch)
		}
		items += r.items
	}
	if uint64(items) < st.EventsDelivered {
		t.Errorf("hook got %d items, stats count %d delivered", items, st.EventsDelivered)
	}
}

func TestRunIdleAtZeroRate(t *testing.T) {
	h := newHook(t, nil)
	s := newSender(t, servicetrade.SenderConfig{URL: h.URL}, newAccount(t, servicetrade.AccountConfig{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if st := s.Stats(); st != (servicetrade.Stats{}) || len(h.requests()) != 0 {
		t.Errorf("idle sender sent: %+v", st)
	}
}

func TestRunAlreadyRunning(t *testing.T) {
	h := newHook(t, nil)
	s := newSender(t, servicetrade.SenderConfig{URL: h.URL}, newAccount(t, servicetrade.AccountConfig{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	over, stop := context.WithCancel(context.Background())
	stop() // a second Run that is not refused returns at once
	waitFor(t, "a second Run to be refused", func() bool {
		return errors.Is(s.Run(over), servicetrade.ErrRunning)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
}

func TestRunWithoutAccount(t *testing.T) {
	s := newSender(t, servicetrade.SenderConfig{URL: "http://127.0.0.1:1", EventsPerSecond: 1}, nil)
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("Run() without an account = nil, want an error")
	}
}

func TestRunSendsDuplicates(t *testing.T) {
	h := newHook(t, nil)
	s := newSender(t, servicetrade.SenderConfig{
		URL:             h.URL,
		EventsPerSecond: 1000,
		MaxBatch:        1,
		DuplicateRate:   1,
		ReorderRate:     servicetrade.Never,
	}, newAccount(t, servicetrade.AccountConfig{Seed: 2}))

	if err := runSender(t, s, func() bool { return len(h.requests()) >= 20 }); err != nil {
		t.Fatal(err)
	}

	bodies := map[string][][]byte{}
	for _, r := range h.requests() {
		bodies[r.messageID] = append(bodies[r.messageID], r.body)
	}
	once := 0
	for id, bs := range bodies {
		switch len(bs) {
		case 1:
			once++ // the last one, if Run stopped before its duplicate
		case 2:
			if !bytes.Equal(bs[0], bs[1]) {
				t.Errorf("message %s: duplicate body differs:\n%s\n%s", id, bs[0], bs[1])
			}
		default:
			t.Errorf("message %s sent %d times, want 2", id, len(bs))
		}
	}
	if once > 1 {
		t.Errorf("%d messages sent only once, want every one but the last sent twice", once)
	}
	if st := s.Stats(); st.DuplicatesSent < 9 || st.Reordered != 0 {
		t.Errorf("Stats() = %+v, want 9+ duplicates and no reordering", st)
	}
}

func TestRunReorders(t *testing.T) {
	h := newHook(t, nil)
	var mu sync.Mutex
	var seqs []uint64
	var ids []string
	s := newSender(t, servicetrade.SenderConfig{
		URL:             h.URL,
		EventsPerSecond: 1000,
		MaxBatch:        1,
		DuplicateRate:   servicetrade.Never,
		ReorderRate:     1,
		OnResult: func(r servicetrade.Result) {
			mu.Lock()
			defer mu.Unlock()
			seqs = append(seqs, r.Delivery.Seq)
			ids = append(ids, r.Delivery.MessageID)
		},
	}, newAccount(t, servicetrade.AccountConfig{Seed: 3}))
	sent := func() []uint64 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seqs)
	}

	if err := runSender(t, s, func() bool { return len(sent()) >= 8 }); err != nil {
		t.Fatal(err)
	}

	// With a rate of 1, every other delivery is held back and sent after the next one.
	if got, want := sent()[:8], []uint64{2, 1, 4, 3, 6, 5, 8, 7}; !slices.Equal(got, want) {
		t.Errorf("deliveries sent in order %v, want %v", got, want)
	}
	for i, r := range h.requests()[:8] {
		if r.messageID != ids[i] {
			t.Errorf("request %d to the hook was %s, want %s: the hook saw another order", i, r.messageID, ids[i])
		}
	}
	if st := s.Stats(); st.Reordered < 4 || st.DuplicatesSent != 0 {
		t.Errorf("Stats() = %+v, want 4+ reordered and no duplicates", st)
	}
}

// TestDeliverSpreadsAttemptsOverURLs: with several URLs (one hook on several gateways),
// attempts go to each in turn, so a retry reaches another gateway.
func TestDeliverSpreadsAttemptsOverURLs(t *testing.T) {
	first := newHook(t, replyWith(http.StatusServiceUnavailable))
	second := newHook(t, replyWith(http.StatusOK))
	s := newSender(t, servicetrade.SenderConfig{URL: first.URL, MoreURLs: []string{second.URL}, RetryDelay: time.Millisecond}, nil)
	res := s.Deliver(t.Context(), sampleDelivery(t, 2))
	if !res.Delivered || res.Attempts != 2 {
		t.Fatalf("Deliver = %+v, want delivered at the second attempt", res)
	}
	res = s.Deliver(t.Context(), sampleDelivery(t, 1))
	if !res.Delivered || res.Attempts != 2 {
		t.Fatalf("second Deliver = %+v, want the first attempt at the first URL (503), the retry at the second", res)
	}
	if n, m := len(first.requests()), len(second.requests()); n != 2 || m != 2 {
		t.Errorf("requests: %d to the first URL, %d to the second; want 2 each", n, m)
	}
}
