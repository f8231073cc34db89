package poller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/poller"
	"github.com/fieldstream/fieldstream/services/simulator/fault"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/streams"
)

const tenant = "acme"

var (
	t0  = time.Unix(1767100000, 0).UTC() // when the simulated account's entities were created
	now = t0.Add(10 * time.Minute)       // the poller's clock
)

// testEnv is an embedded JetStream with the EVENTS stream and a simulated ServiceTrade
// account behind its simulated API.
type testEnv struct {
	t    *testing.T
	nc   *nats.Conn
	js   jetstream.JetStream
	acct *stsim.Account
	api  *stsim.API
	src  *servicetrade.Client
}

func newTestEnv(t *testing.T, ac stsim.AccountConfig) *testEnv {
	t.Helper()
	ctx := context.Background()
	nc, js := natstest.Connect(t, natstest.RunServer(t))
	cfgs, err := streams.Definitions()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := streams.ApplyConfigs(ctx, js, cfgs); err != nil {
		t.Fatal(err)
	}
	if ac.Start.IsZero() {
		ac.Start = t0
	}
	acct, err := stsim.NewAccount(ac)
	if err != nil {
		t.Fatal(err)
	}
	api, err := stsim.NewAPI(acct, stsim.APIConfig{ClientID: "fieldstream", ClientSecret: "dev-secret"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	src, err := servicetrade.New(servicetrade.Config{BaseURL: srv.URL + "/api", ClientID: "fieldstream", ClientSecret: "dev-secret"})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, nc: nc, js: js, acct: acct, api: api, src: src}
}

// poller returns a poller of tenant on e, its clock at now, retrying quickly.
func (e *testEnv) poller(edit func(*poller.Config)) *poller.Poller {
	e.t.Helper()
	cfg := poller.Config{
		JetStream: e.js, Tenant: tenant, Source: e.src,
		Now:   func() time.Time { return now },
		Retry: poller.RetryConfig{InitialInterval: 10 * time.Millisecond, MaxInterval: 100 * time.Millisecond, Budget: 10 * time.Second},
	}
	if edit != nil {
		edit(&cfg)
	}
	p, err := poller.New(context.Background(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// change makes n changes in the account at time at.
func (e *testEnv) change(n int, at time.Time) { e.acct.NextChanges(n, at) }

// ver is one entity version as ServiceTrade's API shows it.
type ver struct{ id, created, updated int64 }

var entityOf = map[string]string{
	poller.KindJob: event.EntityWorkOrder, poller.KindAsset: event.EntityAsset,
	poller.KindLocation: event.EntityLocation, poller.KindClock: event.EntityTimeEntry,
}

// versions lists the account's entities of kind updated strictly after from.
func (e *testEnv) versions(kind string, from time.Time) []ver {
	var out []ver
	add := func(id, created, updated int64) {
		if updated > from.Unix() {
			out = append(out, ver{id, created, updated})
		}
	}
	switch kind {
	case poller.KindJob:
		for _, v := range e.acct.Jobs() {
			add(v.ID, v.Created, v.Updated)
		}
	case poller.KindAsset:
		for _, v := range e.acct.Assets() {
			add(v.ID, v.Created, v.Updated)
		}
	case poller.KindLocation:
		for _, v := range e.acct.Locations() {
			add(v.ID, v.Created, v.Updated)
		}
	case poller.KindClock:
		for _, v := range e.acct.ClockEvents() {
			add(v.ID, v.Created, v.Updated)
		}
	}
	return out
}

// stored is one message of EVENTS.
type stored struct {
	subject string
	header  nats.Header
	data    []byte
	ce      event.CloudEvent
}

// events returns the messages of EVENTS from sequence first on.
func (e *testEnv) events(first uint64) []stored {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, "EVENTS")
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []stored
	for seq := max(first, info.State.FirstSeq); info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			e.t.Fatal(err)
		}
		st := stored{subject: m.Subject, header: m.Header, data: m.Data}
		if err := json.Unmarshal(m.Data, &st.ce); err != nil {
			e.t.Fatalf("seq %d: not a CloudEvent: %v", seq, err)
		}
		out = append(out, st)
	}
	return out
}

func (e *testEnv) lastSeq() uint64 {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), "EVENTS")
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.LastSeq
}

// checkEvent asserts that m is the polled event of version v of an entity.
func checkEvent(t *testing.T, m stored, entity string, v ver) {
	t.Helper()
	id := strconv.FormatInt(v.id, 10)
	action := "updated"
	if v.created == v.updated {
		action = "created"
	}
	dedup := "pl:" + tenant + ":" + entity + ":" + id + ":" + strconv.FormatInt(v.updated, 10)
	for _, c := range []struct{ what, got, want string }{
		{"subject", m.subject, "events." + tenant + "." + entity + "." + id + "." + action},
		{"Nats-Msg-Id", m.header.Get(jetstream.MsgIDHeader), dedup},
		{"Fs-Origin", m.header.Get(event.HeaderOrigin), event.OriginPoll},
		{"Content-Type", m.header.Get("Content-Type"), event.ContentType},
		{"id", m.ce.ID, dedup},
		{"source", m.ce.Source, "servicetrade-poll/" + tenant},
		{"type", m.ce.Type, "dev.fieldstream." + entity + "." + action},
		{"subject attribute", m.ce.Subject, entity + "/" + id},
		{"entityid", m.ce.EntityID, id},
		{"time", m.ce.Time.Format(time.RFC3339), time.Unix(v.updated, 0).UTC().Format(time.RFC3339)},
		{"receivedtime", m.ce.ReceivedTime.Format(time.RFC3339), now.Format(time.RFC3339)},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s %q, want %q", m.subject, c.what, c.got, c.want)
		}
	}
	// data is the entity's JSON with its id exact: decoded as a number literal, never a float.
	dec := json.NewDecoder(bytes.NewReader(m.ce.Data))
	dec.UseNumber()
	var data map[string]any
	if err := dec.Decode(&data); err != nil {
		t.Fatalf("%s: data: %v", m.subject, err)
	}
	if got, _ := data["id"].(json.Number); got.String() != id || data["updated"].(json.Number).String() != strconv.FormatInt(v.updated, 10) {
		t.Errorf("%s: data id %v updated %v, want %s %d", m.subject, data["id"], data["updated"], id, v.updated)
	}
	if !bytes.Contains(m.data, []byte(`"id":`+id+`,`)) {
		t.Errorf("%s: the envelope does not carry id %s literally: %s", m.subject, id, m.data)
	}
}

// TestPollOnce polls a changing account step by step: each poll publishes exactly one event
// per entity version updated in its window that EVENTS did not hold yet, reports the ones
// it did hold as duplicates, and moves the checkpoint as documented.
func TestPollOnce(t *testing.T) {
	e := newTestEnv(t, stsim.AccountConfig{Seed: 7, IDBase: 1<<53 + 1})
	p := e.poller(nil)
	ctx := context.Background()
	inStream := map[string]bool{} // dedup ids in EVENTS
	steps := []struct {
		name    string
		changes int           // account changes made before the poll …
		at      time.Duration // … at t0+at
		since   time.Time
		// wantFrom is the walk's start given the checkpoint before the poll.
		wantFrom func(cp time.Time) time.Time
		// moves: the checkpoint may advance (since is not after it).
		moves bool
	}{
		{"the first poll reads the initial lookback", 40, time.Minute, time.Time{},
			func(time.Time) time.Time { return now.Add(-poller.DefaultInitialLookback) }, true},
		{"a second poll finds duplicates only", 0, 0, time.Time{},
			func(cp time.Time) time.Time { return cp.Add(-poller.DefaultOverlap) }, true},
		{"new changes are published and move the checkpoint", 30, 5 * time.Minute, time.Time{},
			func(cp time.Time) time.Time { return cp.Add(-poller.DefaultOverlap) }, true},
		{"a re-poll from before the checkpoint finds duplicates", 0, 0, t0.Add(-time.Second),
			func(time.Time) time.Time { return t0.Add(-time.Second) }, true},
		{"a re-poll from after the checkpoint does not move it past the gap", 10, 8 * time.Minute, t0.Add(7 * time.Minute),
			func(time.Time) time.Time { return t0.Add(7 * time.Minute) }, false},
		{"the next poll from the checkpoint covers the gap", 0, 0, time.Time{},
			func(cp time.Time) time.Time { return cp.Add(-poller.DefaultOverlap) }, true},
	}
	cps := map[string]time.Time{}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.changes > 0 {
				e.change(st.changes, t0.Add(st.at))
			}
			type want struct {
				from            time.Time
				vers            []ver
				published, dups int
				checkpoint      time.Time
			}
			wants := map[string]want{}
			for _, kind := range poller.DefaultKinds() {
				w := want{from: st.wantFrom(cps[kind])}
				w.vers = e.versions(kind, w.from)
				newest := w.from.Unix()
				for _, v := range w.vers {
					if inStream[poller.DedupID(tenant, entityOf[kind], v.id, v.updated)] {
						w.dups++
					} else {
						w.published++
					}
					newest = max(newest, v.updated)
				}
				w.checkpoint = cps[kind]
				if st.moves && time.Unix(newest, 0).After(w.checkpoint) {
					w.checkpoint = time.Unix(newest, 0).UTC()
				}
				wants[kind] = w
			}
			first := e.lastSeq() + 1
			res, err := p.PollOnce(ctx, st.since)
			if err != nil {
				t.Fatal(err)
			}
			got := e.events(first)
			byID := map[string]stored{}
			for _, m := range got {
				byID[m.header.Get(jetstream.MsgIDHeader)] = m
			}
			totalPublished := 0
			for kind, w := range wants {
				kr := res.Kinds[kind]
				if !kr.From.Equal(w.from) || kr.Seen != len(w.vers) || kr.Published != w.published || kr.Duplicates != w.dups {
					t.Errorf("%s: from %s seen %d published %d duplicates %d; want from %s seen %d published %d duplicates %d",
						kind, kr.From, kr.Seen, kr.Published, kr.Duplicates, w.from, len(w.vers), w.published, w.dups)
				}
				cp, ok, err := p.Checkpoint(ctx, kind)
				if err != nil || !ok || !cp.Equal(w.checkpoint) || !kr.Checkpoint.Equal(w.checkpoint) {
					t.Errorf("%s: checkpoint %s (result %s, ok %v, err %v), want %s", kind, cp, kr.Checkpoint, ok, err, w.checkpoint)
				}
				cps[kind] = cp
				for _, v := range w.vers {
					dedup := poller.DedupID(tenant, entityOf[kind], v.id, v.updated)
					if inStream[dedup] {
						continue
					}
					m, ok := byID[dedup]
					if !ok {
						t.Errorf("%s %d updated %d: no event", kind, v.id, v.updated)
						continue
					}
					checkEvent(t, m, entityOf[kind], v)
					if v.id <= 1<<53 {
						t.Fatalf("%s %d: the account's ids should be above 2^53", kind, v.id)
					}
					inStream[dedup] = true
				}
				totalPublished += w.published
			}
			if len(got) != totalPublished {
				t.Errorf("%d events stored, want %d", len(got), totalPublished)
			}
			if st.name == steps[1].name && (res.Total().Duplicates == 0 || res.Total().Published != 0) {
				t.Errorf("second poll: %+v, want duplicates only", res.Total())
			}
		})
	}
}

// TestPollOnceRidesOutRateLimits: with the API allowing a few requests a second and
// answering the rest 429 with Retry-After, a poll waits as told, resumes each page it was
// refused, and publishes every entity exactly once.
func TestPollOnceRidesOutRateLimits(t *testing.T) {
	e := newTestEnv(t, stsim.AccountConfig{Seed: 3})
	for i := range 5 {
		e.change(8, t0.Add(time.Duration(i+1)*time.Second))
	}
	e.api.Faults().Set(fault.Faults{RatePerSecond: 4})
	p := e.poller(func(c *poller.Config) { c.PageSize = 5 })
	res, err := p.PollOnce(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, kind := range poller.DefaultKinds() {
		n := len(e.versions(kind, now.Add(-time.Hour)))
		if kr := res.Kinds[kind]; kr.Seen != n || kr.Published != n || kr.Duplicates != 0 {
			t.Errorf("%s: %+v, want %d seen and published", kind, kr, n)
		}
		want += n
	}
	if got := len(e.events(0)); got != want {
		t.Errorf("%d events stored, want %d", got, want)
	}
	if res.Total().Throttled == 0 || e.api.Faults().Stats().RateLimited == 0 {
		t.Fatalf("the rate limit was not exercised: %+v, %+v", res.Total(), e.api.Faults().Stats())
	}
	t.Logf("%d entities in pages of 5, %d requests refused (429) and waited out", want, res.Total().Throttled)
}

// TestPollOnceFailures: transient errors are retried; a permanent error or JetStream not
// acknowledging fails the kinds concerned and leaves their checkpoints where they were.
func TestPollOnceFailures(t *testing.T) {
	tests := []struct {
		name          string
		setup         func(e *testEnv)
		wantErr       string   // in PollOnce's error; "" for none
		wantPermanent bool     // the error is classified permanent
		wantFailed    []string // kinds that fail
		wantStop      bool     // the poll stops after the first kind
	}{
		{
			name:  "transient API errors are retried",
			setup: func(e *testEnv) { e.api.Faults().Set(fault.Faults{FailNext: 3, ErrorStatus: 503}) },
		},
		{
			name:          "a permanent API error fails its kind only",
			setup:         func(e *testEnv) { e.api.Faults().Set(fault.Faults{FailNext: 1, ErrorStatus: 400}) },
			wantErr:       "HTTP 400",
			wantPermanent: true,
			wantFailed:    []string{poller.KindJob},
		},
		{
			name: "JetStream not acknowledging stops the poll and keeps every checkpoint",
			setup: func(e *testEnv) {
				if err := e.js.DeleteStream(context.Background(), "EVENTS"); err != nil {
					e.t.Fatal(err)
				}
			},
			wantErr:    "publish to JetStream failed",
			wantFailed: poller.DefaultKinds(),
			wantStop:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, stsim.AccountConfig{Seed: 5})
			e.change(10, t0.Add(time.Minute))
			p := e.poller(func(c *poller.Config) { c.Retry.Budget = 300 * time.Millisecond })
			tt.setup(e)
			res, err := p.PollOnce(context.Background(), time.Time{})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("PollOnce: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("PollOnce: %v, want an error with %q", err, tt.wantErr)
			case tt.wantErr != "" && failure.IsPermanent(err) != tt.wantPermanent:
				t.Fatalf("PollOnce: %v: permanent %v, want %v", err, failure.IsPermanent(err), tt.wantPermanent)
			}
			if tt.wantErr == "" && res.Total().Retries == 0 {
				t.Errorf("no retry counted: %+v", res.Total())
			}
			for _, kind := range poller.DefaultKinds() {
				failed := slices.Contains(tt.wantFailed, kind)
				_, hasCP, cerr := p.Checkpoint(context.Background(), kind)
				if cerr != nil {
					t.Fatal(cerr)
				}
				kr, polled := res.Kinds[kind]
				if polled && (kr.Error != "") != failed || hasCP == failed || !polled && !tt.wantStop {
					t.Errorf("%s: polled %v, error %q, checkpoint %v; want failed %v", kind, polled, kr.Error, hasCP, failed)
				}
				if polled && failed && !strings.Contains(err.Error(), "poller: "+kind+": ") {
					t.Errorf("the error does not name kind %s: %v", kind, err)
				}
			}
			if tt.wantStop && len(res.Kinds) != 1 {
				t.Errorf("the poll went on after JetStream failed: %+v", res)
			}
		})
	}
}

// TestServeAnswersPollRequests: a request on fieldstream.poller.<tenant>.run polls and is
// answered with the result as JSON; a bad request is answered with an error and polls
// nothing.
func TestServeAnswersPollRequests(t *testing.T) {
	e := newTestEnv(t, stsim.AccountConfig{Seed: 9})
	e.change(20, t0.Add(time.Minute))
	p := e.poller(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	request := func(payload string) poller.RunReply {
		t.Helper()
		var m *nats.Msg
		natstest.Eventually(t, 5*time.Second, "the poller subscribed", func() bool {
			var err error
			m, err = e.nc.Request(poller.RunSubject(tenant), []byte(payload), 10*time.Second)
			return !errors.Is(err, nats.ErrNoResponders)
		})
		var r poller.RunReply
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("reply %s: %v", m.Data, err)
		}
		return r
	}
	tests := []struct {
		name, payload string
		wantErr       string
		wantFrom      time.Time
		wantPublished bool
	}{
		{name: "an empty request polls from the checkpoints", payload: "", wantFrom: now.Add(-time.Hour), wantPublished: true},
		{name: "since re-polls a window", payload: `{"since":"2h"}`, wantFrom: now.Add(-2 * time.Hour)},
		{name: "since as a time", payload: `{"since":"` + t0.Format(time.RFC3339) + `"}`, wantFrom: t0},
		{name: "a bad since is refused", payload: `{"since":"soon"}`, wantErr: "since"},
		{name: "a bad payload is refused", payload: `not json`, wantErr: "request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(tt.payload)
			if tt.wantErr != "" {
				if !strings.Contains(r.Error, tt.wantErr) || len(r.Kinds) != 0 {
					t.Fatalf("reply %+v, want error with %q and no poll", r, tt.wantErr)
				}
				return
			}
			if r.Error != "" || !slices.Equal(slices.Sorted(maps.Keys(r.Kinds)), slices.Sorted(slices.Values(poller.DefaultKinds()))) {
				t.Fatalf("reply %+v", r)
			}
			for kind, kr := range r.Kinds {
				if !kr.From.Equal(tt.wantFrom) || (kr.Published > 0) != tt.wantPublished && kind == poller.KindJob {
					t.Errorf("%s: %+v, want from %s, published %v", kind, kr, tt.wantFrom, tt.wantPublished)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	e := newTestEnv(t, stsim.AccountConfig{})
	valid := poller.Config{JetStream: e.js, Tenant: tenant, Source: e.src}
	tests := []struct {
		name    string
		edit    func(*poller.Config)
		wantErr string
	}{
		{"valid", func(*poller.Config) {}, ""},
		{"no JetStream", func(c *poller.Config) { c.JetStream = nil }, "JetStream is required"},
		{"no source", func(c *poller.Config) { c.Source = nil }, "Source is required"},
		{"no tenant", func(c *poller.Config) { c.Tenant = "" }, "Tenant"},
		{"tenant that would split a subject", func(c *poller.Config) { c.Tenant = "a.b" }, "Tenant"},
		{"unknown kind", func(c *poller.Config) { c.Kinds = []string{"job", "appointment"} }, `"appointment"`},
		{"kind twice", func(c *poller.Config) { c.Kinds = []string{"job", "job"} }, "twice"},
		{"negative overlap", func(c *poller.Config) { c.Overlap = -time.Second }, "Overlap"},
		{"negative page size", func(c *poller.Config) { c.PageSize = -1 }, "PageSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.edit(&c)
			err := c.Validate()
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: %v, want %q", err, tt.wantErr)
			}
			if _, nerr := poller.New(context.Background(), c); (nerr == nil) != (err == nil) {
				t.Fatalf("New: %v, Validate: %v", nerr, err)
			}
		})
	}
}

func TestNewNeedsTheEventsStream(t *testing.T) {
	e := newTestEnv(t, stsim.AccountConfig{})
	if err := e.js.DeleteStream(context.Background(), "EVENTS"); err != nil {
		t.Fatal(err)
	}
	_, err := poller.New(context.Background(), poller.Config{JetStream: e.js, Tenant: tenant, Source: e.src})
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("New: %v, want ErrStreamNotFound", err)
	}
}

// TestRunPollsOnSchedule: Run polls at once and then every interval, publishing what
// changed meanwhile, and returns nil when its context ends.
func TestRunPollsOnSchedule(t *testing.T) {
	e := newTestEnv(t, stsim.AccountConfig{Seed: 11})
	p := e.poller(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, 20*time.Millisecond) }()
	// published reports whether EVENTS holds an event of every version the API shows.
	published := func() bool {
		have := map[string]bool{}
		for _, m := range e.events(0) {
			have[m.ce.ID] = true
		}
		for _, kind := range poller.DefaultKinds() {
			for _, v := range e.versions(kind, now.Add(-time.Hour)) {
				if !have[poller.DedupID(tenant, entityOf[kind], v.id, v.updated)] {
					return false
				}
			}
		}
		return true
	}
	natstest.Eventually(t, 10*time.Second, "the first poll published every entity", published)
	e.change(20, t0.Add(3*time.Minute))
	natstest.Eventually(t, 10*time.Second, "a later poll published the new changes", published)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := p.Run(context.Background(), 0); err == nil {
		t.Fatal("Run with interval 0: no error")
	}
}
