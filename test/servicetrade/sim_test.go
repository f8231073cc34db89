package servicetrade_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	sim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// Test fixtures: the real ServiceTrade simulator behind httptest, and clients of it that
// share its settable clock.

const (
	testClientID     = "fieldstream"
	testClientSecret = "not-a-real-secret"
)

var testT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// testClock is a clock that stands still until advanced.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type simulator struct {
	acct  *sim.Account
	api   *sim.API
	srv   *httptest.Server
	clock *testClock
}

type simOptions struct {
	account       sim.AccountConfig
	tokenLifetime time.Duration // default 2 minutes
	// wrap, if set, wraps the API's handler (to interfere with requests).
	wrap func(api *sim.API) http.Handler
}

func newSimulator(t testing.TB, o simOptions) *simulator {
	t.Helper()
	if o.account.Seed == 0 {
		o.account.Seed = 1
	}
	if o.account.Start.IsZero() {
		o.account.Start = testT0
	}
	if o.tokenLifetime == 0 {
		o.tokenLifetime = 2 * time.Minute
	}
	acct, err := sim.NewAccount(o.account)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: testT0}
	api, err := sim.NewAPI(acct, sim.APIConfig{
		ClientID:      testClientID,
		ClientSecret:  testClientSecret,
		TokenLifetime: o.tokenLifetime,
		Now:           clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = api
	if o.wrap != nil {
		h = o.wrap(api)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &simulator{acct: acct, api: api, srv: srv, clock: clock}
}

// client returns a client of s on s's clock; edit adjusts its Config.
func (s *simulator) client(t testing.TB, edit func(*servicetrade.Config)) *servicetrade.Client {
	t.Helper()
	cfg := servicetrade.Config{
		BaseURL:      s.srv.URL + "/api",
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		HTTPClient:   s.srv.Client(),
		Now:          s.clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := servicetrade.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *simulator) grants() int64 { return s.api.Stats().TokenGrants }
