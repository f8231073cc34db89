package test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/services/fsctl/dashboard"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/fault"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/services/workorders"
	"github.com/fieldstream/fieldstream/streams"
)

// TestDashboardInChromium runs the whole pipeline, makes the work-order consumer
// dead-letter events (the work-order system answers 422), pauses it with a backlog, leaves
// a replay to it waiting, and opens the dashboard in a real headless Chromium. Every number
// the page shows must equal what ops.GetStatus (`fsctl status`) says; then the page must
// follow, without a reload, new events arriving and the consumer being resumed.
func TestDashboardInChromium(t *testing.T) {
	browser := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	e := newPipelineEnv(t, simulator.StackConfig{Account: stsim.AccountConfig{Seed: 17}})
	e.start(consumer.Config{})
	js := e.JS

	// Dead letters: every work-order write is rejected as unprocessable.
	e.Stack.WorkOrders.Faults().Set(fault.Faults{ErrorRate: 1, ErrorStatus: 422})
	e.send(12)
	poll(ctx, t, "work orders dead-lettered and every consumer settled", func() (bool, string) {
		n := len(e.deadLetters())
		return n > 0 && e.settled(), fmt.Sprintf("%d dead letters", n)
	})
	e.Stack.WorkOrders.Faults().Set(fault.Faults{})

	// A paused consumer with a backlog, and a replay to it that waits, created paused.
	until := time.Now().Add(time.Hour)
	if _, err := ops.PauseConsumer(ctx, js, workorders.Name, until); err != nil {
		t.Fatal(err)
	}
	e.send(12)
	replay, err := ops.StartReplay(ctx, js, ops.ReplaySpec{Consumer: workorders.Name, FromSeq: 1, UntilSeq: 10, Paused: true})
	if err != nil || replay.Total == 0 || !replay.Paused {
		t.Fatalf("replay: %+v, %v", replay, err)
	}
	poll(ctx, t, "quiet: work orders paused with a backlog, the replay waiting, the others settled", func() (bool, string) {
		st := status(ctx, t, js)
		wo := find(st, streams.Events, workorders.Name)
		rp := findReplay(st, replay.Replay)
		return e.Settled(ctx, "assets", "payroll") && wo.Paused && wo.Pending > 0 && wo.AckPending == 0 && rp.Paused && rp.Remaining == uint64(replay.Total),
			fmt.Sprintf("workorders %+v, replay %+v", wo, rp)
	})

	d, err := dashboard.New(js, dashboard.Options{SampleEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)

	page := openBrowser(ctx, t, browser)
	if err := chromedp.Do(page,
		chromedp.Navigate(srv.URL+"/dashboard/"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="consumer-workorders-pending"]`)),
	); err != nil {
		t.Fatalf("dashboard did not render: %v", err)
	}

	// The page equals `fsctl status`. Nothing moves now, so the first render after the
	// page loaded should already agree; polling only absorbs a render in flight.
	var shown map[string]string
	poll(ctx, t, "the page shows what ops.GetStatus says", func() (bool, string) {
		shown = readPage(t, page)
		diff := compare(shown, status(ctx, t, js))
		return len(diff) == 0, fmt.Sprint(diff)
	})
	st := status(ctx, t, js)
	if shown["consumer-workorders-paused"] != "paused" || shown["consumer-assets-paused"] != "running" {
		t.Fatalf("paused flags: workorders %q, assets %q", shown["consumer-workorders-paused"], shown["consumer-assets-paused"])
	}
	if lag, _ := strconv.ParseFloat(shown["consumer-workorders-lag@value"], 64); lag <= 0 {
		t.Fatalf("paused consumer with a backlog shows lag %q", shown["consumer-workorders-lag@value"])
	}
	rp := "replay-" + replay.Replay
	if shown["replays-in-progress"] != "1" || shown[rp+"-remaining"] != strconv.Itoa(replay.Total) || shown[rp+"-target"] != workorders.Name ||
		shown[rp+"-paused"] != "paused" || shown[rp+"-window"] != fmt.Sprintf("%d..%d", replay.FromSeq, replay.UntilSeq) {
		t.Fatalf("replays: %q in progress, %s remaining %q, to %q, %q, window %q; want 1 and %d to %s, paused, window %d..%d", shown["replays-in-progress"],
			replay.Replay, shown[rp+"-remaining"], shown[rp+"-target"], shown[rp+"-paused"], shown[rp+"-window"], replay.Total, workorders.Name, replay.FromSeq, replay.UntilSeq)
	}
	if shown["dlq-total"] == "0" || len(st.DeadLetters) == 0 {
		t.Fatalf("no dead letters shown (%q) or read (%d groups)", shown["dlq-total"], len(st.DeadLetters))
	}
	t.Logf("page agrees with ops.GetStatus: workorders pending %s, dead letters %s in %s groups, replay pending %s",
		shown["consumer-workorders-pending"], shown["dlq-total"], shown["dlq-groups"], shown[rp+"-remaining"])

	// It refreshes by itself: more events pile up behind the paused consumer, and the
	// ingest rate shows them arriving.
	before := find(st, streams.Events, workorders.Name).Pending
	e.send(12)
	poll(ctx, t, "the page follows new events without a reload", func() (bool, string) {
		shown = readPage(t, page)
		now := status(ctx, t, js)
		rate, _ := strconv.ParseFloat(shown["ingest-rate"], 64)
		pending := find(now, streams.Events, workorders.Name).Pending
		return pending > before && shown["consumer-workorders-pending"] == strconv.FormatUint(pending, 10) && rate > 0,
			fmt.Sprintf("page pending %s rate %s; status pending %d (was %d)", shown["consumer-workorders-pending"], shown["ingest-rate"], pending, before)
	})

	// The charts of the last hour: the ingest rate saw the events arrive, the backlog line
	// of the paused consumer ends at what it has not settled, the dead letters at their total.
	poll(ctx, t, "the charts show the last hour", func() (bool, string) {
		charts, err := chromedp.Run(page, chromedp.Evaluate[map[string]string](`(() => {
			const q = (id, a) => { const e = document.querySelector('[data-testid="' + id + '"]'); return e ? e.getAttribute(a) || '' : ''; };
			return { ingestPoints: q('chart-ingest', 'data-points'), backlogLast: q('chart-backlog-workorders', 'data-last'),
				deadLast: q('chart-dead-letters-total', 'data-last'), backlogShown: document.querySelector('[data-testid="backlog-total"]').textContent,
				woPending: document.querySelector('[data-testid="consumer-workorders-pending"]').textContent,
				woAckPending: document.querySelector('[data-testid="consumer-workorders-ack-pending"]').textContent,
				deadShown: document.querySelector('[data-testid="dlq-total"]').textContent };
		})()`))
		if err != nil {
			return false, err.Error()
		}
		points, _ := strconv.Atoi(charts["ingestPoints"])
		p, _ := strconv.Atoi(charts["woPending"])
		a, _ := strconv.Atoi(charts["woAckPending"])
		// The charts' last points are the values the page's tables show (which equal fsctl
		// status, checked above), from the same read.
		return points >= 2 && charts["backlogLast"] == strconv.Itoa(p+a) && charts["deadLast"] == charts["deadShown"],
			fmt.Sprintf("charts %v", charts)
	})

	// Resumed, the consumer drains and the page says so.
	if err := ops.ResumeConsumer(ctx, js, workorders.Name); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "the page shows the resumed consumer drained", func() (bool, string) {
		shown = readPage(t, page)
		diff := compare(shown, status(ctx, t, js))
		return len(diff) == 0 && shown["consumer-workorders-paused"] == "running" && shown["consumer-workorders-pending"] == "0", fmt.Sprint(diff)
	})
}

// chromiumPath finds Debian's Chromium. Without it the test is skipped, except in CI
// (CI set), where .ci/run installs it and its absence is a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (.ci/run installs Debian's chromium package)")
	}
	t.Skip("chromium is not installed: apt-get install chromium")
	return ""
}

// openBrowser starts a headless Chromium with its own profile and returns a tab's
// context; the browser is killed, and waited for, when the test ends.
func openBrowser(ctx context.Context, t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	var mu sync.Mutex
	running := true
	logf := func(format string, args ...any) { // chromedp may log after the test: drop that
		mu.Lock()
		defer mu.Unlock()
		if running {
			t.Logf("chromium: "+format, args...)
		}
	}
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		mu.Lock()
		running = false
		mu.Unlock()
	})
	// The browser lives as long as ctx: the test's deadline bounds it too.
	if err := chromedp.Do(tab); err != nil { // starts the browser
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return tab
}

// readPage reads every element with a data-testid in one evaluation, so the values come
// from one render: its text, and its data-value under "<testid>@value".
func readPage(t *testing.T, page context.Context) map[string]string {
	t.Helper()
	shown, err := chromedp.Run(page, chromedp.Evaluate[map[string]string](`(() => {
		const out = {};
		for (const e of document.querySelectorAll('[data-testid]')) {
			out[e.dataset.testid] = e.textContent.trim();
			if (e.dataset.value !== undefined) out[e.dataset.testid + '@value'] = e.dataset.value;
		}
		return out;
	})()`))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	return shown
}

func status(ctx context.Context, t *testing.T, js jetstream.JetStream) ops.Status {
	t.Helper()
	st, err := ops.GetStatus(ctx, js)
	if err != nil {
		t.Fatalf("ops.GetStatus: %v", err)
	}
	return st
}

func find(st ops.Status, stream, name string) ops.ConsumerStatus {
	for _, c := range st.Consumers {
		if c.Stream == stream && c.Name == name {
			return c
		}
	}
	return ops.ConsumerStatus{}
}

// findReplay returns the replay named name of st.
func findReplay(st ops.Status, name string) ops.ReplayStatus {
	for _, r := range st.Replays {
		if r.Name == name {
			return r
		}
	}
	return ops.ReplayStatus{}
}

// compare lists where the page differs from st: each consumer of EVENTS (pending, ack
// pending, redelivered, dead letters, paused), each replay and redrive in progress
// (remaining, ack pending), each dead-letter
// group (count, class) and the totals. The page must show nothing st lacks.
func compare(shown map[string]string, st ops.Status) []string {
	var diff []string
	want := map[string]string{}
	for _, c := range st.Consumers {
		backlog := c.Pending + uint64(c.AckPending)
		switch {
		case c.Stream == streams.Events:
			p := "consumer-" + c.Name
			want[p+"-pending"] = strconv.FormatUint(c.Pending, 10)
			want[p+"-ack-pending"] = strconv.Itoa(c.AckPending)
			want[p+"-redelivered"] = strconv.Itoa(c.Redelivered)
			want[p+"-dead-letters"] = strconv.Itoa(c.DeadLetters)
			want[p+"-paused"] = map[bool]string{true: "paused", false: "running"}[c.Paused]
		case c.Stream == streams.DeadLetters && backlog > 0: // redrives under way
			want["replay-"+c.Name+"-remaining"] = strconv.FormatUint(backlog, 10)
			want["replay-"+c.Name+"-ack-pending"] = strconv.Itoa(c.AckPending)
		}
	}
	for _, r := range st.Replays {
		want["replay-"+r.Name+"-remaining"] = strconv.FormatUint(r.Remaining, 10)
		want["replay-"+r.Name+"-ack-pending"] = strconv.Itoa(r.AckPending)
		want["replay-"+r.Name+"-paused"] = map[bool]string{true: "paused", false: "running"}[r.Paused]
	}
	total := 0
	for _, g := range st.DeadLetters {
		p := "dlq-" + g.Consumer + "-" + g.Fingerprint
		want[p+"-count"] = strconv.Itoa(g.Count)
		want[p+"-class"] = g.Class
		total += g.Count
	}
	want["dlq-total"] = strconv.Itoa(total)
	want["dlq-groups"] = strconv.Itoa(len(st.DeadLetters))
	for _, s := range st.Streams {
		want["stream-"+s.Name+"-messages"] = strconv.FormatUint(s.Messages, 10)
	}
	for k, v := range want {
		if got, ok := shown[k]; !ok {
			diff = append(diff, fmt.Sprintf("%s missing, want %s", k, v))
		} else if got != v {
			diff = append(diff, fmt.Sprintf("%s = %s, want %s", k, got, v))
		}
	}
	// Rows on the page that st does not have.
	for k := range shown {
		for _, prefix := range []string{"consumer-", "replay-", "dlq-"} {
			if len(k) > len(prefix) && k[:len(prefix)] == prefix && isCount(k) {
				if _, ok := want[k]; !ok {
					diff = append(diff, fmt.Sprintf("%s = %s, not in ops.GetStatus", k, shown[k]))
				}
			}
		}
	}
	sort.Strings(diff)
	return diff
}

// isCount reports whether a data-testid names one of the numbers compare checks.
func isCount(testid string) bool {
	for _, suffix := range []string{"-pending", "-ack-pending", "-redelivered", "-dead-letters", "-count", "-remaining"} {
		if len(testid) > len(suffix) && testid[len(testid)-len(suffix):] == suffix {
			return true
		}
	}
	return false
}

// poll checks cond every 50 ms until it holds, and fails the test with cond's last
// description when ctx ends first.
func poll(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not before %v: %s", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}
