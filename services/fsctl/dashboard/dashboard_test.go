package dashboard_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/services/fsctl/dashboard"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/streams"
)

// clock is a settable Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newStreams creates EVENTS and DLQ as streams/ defines them, in memory.
func newStreams(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := natstest.Connect(t, natstest.RunServer(t))
	for name, subj := range map[string][]string{streams.Events: {"events.>"}, streams.DeadLetters: {"dlq.>", "redrive.>"}} {
		if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: subj, Storage: jetstream.MemoryStorage, AllowDirect: true}); err != nil {
			t.Fatal(err)
		}
	}
	return nc, js
}

func publish(t *testing.T, js jetstream.JetStream, subjects ...string) {
	t.Helper()
	for _, s := range subjects {
		if _, err := js.Publish(context.Background(), s, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
}

func getStatus(t *testing.T, url string) (int, dashboard.Snapshot, map[string]any) {
	t.Helper()
	res, err := http.Get(url + "/dashboard/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var snap dashboard.Snapshot
	var raw map[string]any
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &snap); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	return res.StatusCode, snap, raw
}

func TestDashboardStatusJSON(t *testing.T) {
	ctx := context.Background()
	_, js := newStreams(t)
	clk := &clock{now: time.Now().Add(time.Second)} // a second after the events below
	d, err := dashboard.New(js, dashboard.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)

	publish(t, js, "events.acme.job.1.updated", "events.acme.asset.2.updated", "events.acme.job.3.updated")
	if _, err := ops.AddConsumer(ctx, js, "workorders", []string{"events.*.job.>"}, "all", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.AddConsumer(ctx, js, "idle", []string{"events.*.nothing.>"}, "all", ""); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	if _, err := ops.PauseConsumer(ctx, js, "workorders", until); err != nil {
		t.Fatal(err)
	}
	// A replay to workorders nobody runs yet, of the first two of its events.
	replay, err := ops.StartReplay(ctx, js, ops.ReplaySpec{Consumer: "workorders", FromSeq: 1, UntilSeq: 2})
	if err != nil || replay.Total != 1 {
		t.Fatalf("replay: %+v, %v", replay, err)
	}
	// Two dead letters of one kind.
	for _, id := range []string{"7", "8"} {
		m := nats.NewMsg("dlq.workorders.acme.job." + id + ".updated")
		m.Header.Set(consumer.HeaderDLQConsumer, "workorders")
		m.Header.Set(consumer.HeaderDLQClass, consumer.ClassPermanent)
		m.Header.Set(consumer.HeaderDLQError, "PUT /jobs/"+id+": HTTP 422")
		m.Header.Set(consumer.HeaderDLQSubject, "events.acme.job."+id+".updated")
		m.Header.Set(consumer.HeaderDLQLastFailure, time.Now().UTC().Format(time.RFC3339Nano))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	code, snap, raw := getStatus(t, srv.URL)
	if code != http.StatusOK {
		t.Fatalf("status %d: %v", code, raw)
	}
	if snap.IngestRate != nil || raw["ingest_rate"] != nil {
		t.Fatalf("ingest rate %v after one reading, want null", raw["ingest_rate"])
	}
	if !snap.Time.Equal(clk.Now()) {
		t.Fatalf("time %s, want the clock's %s", snap.Time, clk.Now())
	}
	byName := map[string]dashboard.Consumer{}
	for _, c := range snap.Consumers {
		byName[c.Stream+"/"+c.Name] = c
	}
	wo := byName["EVENTS/workorders"]
	if wo.Pending != 2 || !wo.Paused || wo.DeadLetters != 2 || wo.OldestUnacked.IsZero() || wo.LagSeconds <= 0 {
		t.Fatalf("workorders: %+v", wo)
	}
	if idle := byName["EVENTS/idle"]; idle.Backlog() != 0 || !idle.OldestUnacked.IsZero() || idle.LagSeconds != 0 {
		t.Fatalf("idle consumer has a lag: %+v", idle)
	}
	if len(snap.Replays) != 1 || snap.Replays[0].Name != replay.Replay || snap.Replays[0].Target != "workorders" ||
		snap.Replays[0].Events != 1 || snap.Replays[0].Remaining != 1 || snap.Replays[0].Kind != "replay" {
		t.Fatalf("replays in progress: %+v", snap.Replays)
	}
	if _, listed := byName["EVENTS/"+replay.Replay]; listed {
		t.Fatalf("the replay is listed among the consumers: %+v", snap.Consumers)
	}
	if snap.DeadLetterTotal != 2 || len(snap.DeadLetters) != 1 || snap.DeadLetters[0].Count != 2 {
		t.Fatalf("dead letters: %d in %+v", snap.DeadLetterTotal, snap.DeadLetters)
	}
	// The JSON keeps `fsctl status --json`'s names.
	for _, k := range []string{"streams", "consumers", "dead_letter_groups", "time", "ingest_rate", "replays_in_progress", "dead_letter_total"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	c0 := raw["consumers"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "stream", "pending", "ack_pending", "redelivered", "paused", "dead_letters", "lag_seconds"} {
		if _, ok := c0[k]; !ok {
			t.Errorf("consumer JSON lacks %q: %v", k, c0)
		}
	}

	// Within Reuse the same reading is served; after it, a new one, with a rate.
	publish(t, js, "events.acme.job.4.updated", "events.acme.job.5.updated", "events.acme.job.6.updated", "events.acme.job.7.updated")
	if _, again, _ := getStatus(t, srv.URL); !again.Time.Equal(snap.Time) {
		t.Fatalf("a second request within Reuse read again")
	}
	clk.Add(2 * time.Second)
	_, snap, _ = getStatus(t, srv.URL)
	if snap.IngestRate == nil || *snap.IngestRate != 2 || snap.IngestWindowSeconds != 2 {
		t.Fatalf("ingest rate %v over %vs, want 4 events in 2 s", snap.IngestRate, snap.IngestWindowSeconds)
	}
}

func TestDashboardStatusUnavailable(t *testing.T) {
	nc, js := newStreams(t)
	d, err := dashboard.New(js, dashboard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	nc.Close()
	code, _, raw := getStatus(t, srv.URL)
	if code != http.StatusServiceUnavailable || raw["code"] != "status_unavailable" || raw["error"] == "" {
		t.Fatalf("%d %v, want 503 status_unavailable", code, raw)
	}
}

// Concurrent readers share one reading.
func TestDashboardSnapshotIsShared(t *testing.T) {
	_, js := newStreams(t)
	var n atomic.Int64 // a clock that moves on every call
	d, err := dashboard.New(js, dashboard.Options{Now: func() time.Time { return time.Unix(n.Add(1), 0) }, Reuse: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	times := make([]time.Time, 16)
	for i := range times {
		wg.Go(func() {
			s, err := d.Snapshot(context.Background())
			if err != nil {
				t.Error(err)
			}
			times[i] = s.Time
		})
	}
	wg.Wait()
	for _, tm := range times {
		if !tm.Equal(times[0]) {
			t.Fatalf("readings at %v and %v: not shared", times[0], tm)
		}
	}
}

var (
	scriptRE = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	styleRE  = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	urlRE    = regexp.MustCompile(`(?i)(https?:|wss?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
)

// The page is one self-contained document: its only script and style are inline and named
// by hash in its Content-Security-Policy, and it names no outside URL.
func TestDashboardPageIsSelfContained(t *testing.T) {
	_, js := newStreams(t)
	d, err := dashboard.New(js, dashboard.Options{Refresh: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL + "/dashboard/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page := string(b)
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("%d %q csp %q", res.StatusCode, res.Header.Get("Content-Type"), csp)
	}
	for _, re := range []*regexp.Regexp{scriptRE, styleRE} {
		m := re.FindAllStringSubmatch(page, -1)
		if len(m) != 1 {
			t.Fatalf("%d matches of %s, want 1", len(m), re)
		}
		sum := sha256.Sum256([]byte(m[0][1]))
		if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, h) {
			t.Fatalf("CSP %q does not allow the inline block hashed %s", csp, h)
		}
	}
	if u := urlRE.FindString(page); u != "" {
		t.Fatalf("the page names an outside URL: %s", u)
	}
	if !strings.Contains(page, `data-refresh-ms="`+strconv.Itoa(1500)+`"`) {
		t.Fatal("the page does not carry the refresh interval")
	}
	for path, want := range map[string]int{"/dashboard/nothing": 404, "/other": 404, "/dashboard/api/status": 200} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
		}
	}
	res, err = http.Post(srv.URL+"/dashboard/api/status", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST api/status: %d, want 405", res.StatusCode)
	}
}

func TestDashboardOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    dashboard.Options
		wantErr bool
	}{
		{name: "zero value", opts: dashboard.Options{}},
		{name: "other prefix", opts: dashboard.Options{Prefix: "/ops/"}},
		{name: "root", opts: dashboard.Options{Prefix: "/"}},
		{name: "prefix without trailing slash", opts: dashboard.Options{Prefix: "/dashboard"}, wantErr: true},
		{name: "relative prefix", opts: dashboard.Options{Prefix: "dashboard/"}, wantErr: true},
		{name: "negative timeout", opts: dashboard.Options{Timeout: -time.Second}, wantErr: true},
		{name: "refresh too fast", opts: dashboard.Options{Refresh: time.Millisecond}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	if _, err := dashboard.New(nil, dashboard.Options{}); err == nil {
		t.Fatal("New without JetStream: no error")
	}
}
