package servicetrade_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/simulator/fault"
	sim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// TestTokenRefreshSchedule fetches at points in time (on an injected clock shared with
// the simulator) and counts the simulator's grants: a token is reused until its refresh
// point and replaced before it expires, whatever its lifetime.
func TestTokenRefreshSchedule(t *testing.T) {
	type call struct {
		at         time.Duration // since the first call
		wantGrants int64
	}
	tests := []struct {
		name     string
		lifetime time.Duration
		calls    []call
	}{
		{
			// Shorter than RefreshBefore (5 min): used for half its life, 60 s.
			name: "2 minutes", lifetime: 2 * time.Minute,
			calls: []call{{0, 1}, {30 * time.Second, 1}, {59 * time.Second, 1}, {60 * time.Second, 2}, {119 * time.Second, 2}, {120 * time.Second, 3}},
		},
		{
			// Between RefreshBefore and twice it: still used for half its life.
			name: "8 minutes", lifetime: 8 * time.Minute,
			calls: []call{{0, 1}, {3*time.Minute + 59*time.Second, 1}, {4 * time.Minute, 2}},
		},
		{
			// Long-lived: replaced when 5 minutes remain, not after an assumed hour.
			name: "2 hours", lifetime: 2 * time.Hour,
			calls: []call{{0, 1}, {time.Hour, 1}, {114*time.Minute + 59*time.Second, 1}, {115 * time.Minute, 2}, {229 * time.Minute, 2}, {230 * time.Minute, 3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimulator(t, simOptions{tokenLifetime: tt.lifetime})
			c := s.client(t, nil)
			id := s.acct.Jobs()[0].ID
			start := s.clock.Now()
			for _, call := range tt.calls {
				s.clock.Advance(start.Add(call.at).Sub(s.clock.Now()))
				if _, err := c.Job(context.Background(), id); err != nil {
					t.Fatalf("at +%s: %v", call.at, err)
				}
				if got := s.grants(); got != call.wantGrants {
					t.Fatalf("at +%s: grants = %d, want %d", call.at, got, call.wantGrants)
				}
			}
			if got := s.api.Stats().Unauthorized; got != 0 {
				t.Errorf("the API refused %d requests: a token was used past its expiry", got)
			}
		})
	}
}

func TestRevokedTokenRetriedOnce(t *testing.T) {
	s := newSimulator(t, simOptions{})
	c := s.client(t, nil)
	ctx := context.Background()
	id := s.acct.Locations()[0].ID
	if _, err := c.Location(ctx, id); err != nil {
		t.Fatal(err)
	}
	s.api.RevokeAllTokens()
	if _, err := c.Location(ctx, id); err != nil {
		t.Fatalf("after revoke: %v", err)
	}
	got := s.api.Stats()
	if got.TokenGrants != 2 || got.Unauthorized != 1 || got.Requests != 2 {
		t.Errorf("stats = %+v, want 2 grants, 1 unauthorized, 2 requests", got)
	}
}

func TestSecond401IsPermanent(t *testing.T) {
	// Every resource request finds its token revoked.
	s := newSimulator(t, simOptions{wrap: func(api *sim.API) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/oauth2/token" {
				api.RevokeAllTokens()
			}
			api.ServeHTTP(w, r)
		})
	}})
	c := s.client(t, nil)
	_, err := c.Job(context.Background(), s.acct.Jobs()[0].ID)
	if failure.StatusOf(err) != http.StatusUnauthorized || !failure.IsPermanent(err) {
		t.Fatalf("err = %v (status %d), want a permanent 401", err, failure.StatusOf(err))
	}
	if got := s.api.Stats(); got.TokenGrants != 2 || got.Unauthorized != 2 {
		t.Errorf("stats = %+v, want 2 grants and 2 unauthorized: one retry, no more", got)
	}
}

func TestConcurrentCallersShareOneGrant(t *testing.T) {
	s := newSimulator(t, simOptions{})
	c := s.client(t, nil)
	id := s.acct.Jobs()[0].ID
	burst := func() {
		t.Helper()
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range 32 {
			wg.Go(func() {
				if _, err := c.Job(context.Background(), id); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if failed.Load() > 0 {
			t.Fatalf("%d calls failed", failed.Load())
		}
	}
	burst()
	if got := s.grants(); got != 1 {
		t.Fatalf("first burst: grants = %d, want 1", got)
	}
	s.clock.Advance(90 * time.Second) // past the refresh point
	burst()
	if got := s.grants(); got != 2 {
		t.Fatalf("burst at the refresh point: grants = %d, want 2", got)
	}
}

func TestGrantFailureKeepsUnexpiredToken(t *testing.T) {
	s := newSimulator(t, simOptions{})
	c := s.client(t, nil)
	ctx := context.Background()
	id := s.acct.Jobs()[0].ID
	if _, err := c.Job(ctx, id); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(90 * time.Second) // due for refresh, 30 s before expiry
	// The next request — the token grant — fails; the job request after it goes through.
	s.api.Faults().Set(fault.Faults{FailNext: 1})
	if _, err := c.Job(ctx, id); err != nil {
		t.Fatalf("with the token endpoint failing: %v", err)
	}
	if got := s.grants(); got != 1 {
		t.Fatalf("grants = %d, want 1", got)
	}
	// Once expired, the old token is not used: the grant's error comes back.
	s.clock.Advance(time.Minute)
	s.api.Faults().Set(fault.Faults{FailNext: 1})
	_, err := c.Job(ctx, id)
	if failure.StatusOf(err) != http.StatusServiceUnavailable || failure.IsPermanent(err) {
		t.Fatalf("err = %v, want the grant's transient 503", err)
	}
}

// TestLifetimeFromJWT: a token endpoint that sends no expires_in still has its token
// replaced in time, by the JWT's exp.
func TestLifetimeFromJWT(t *testing.T) {
	clock := &testClock{now: testT0}
	var grants atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		grants.Add(1)
		now := clock.Now().Unix()
		claims, _ := json.Marshal(map[string]int64{"iat": now, "exp": now + 600})
		jwt := "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": jwt, "token_type": "bearer"})
	})
	mux.HandleFunc("GET /api/job/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"messages":{"success":[],"error":[]},"data":{"id":` + r.PathValue("id") + `}}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := servicetrade.New(servicetrade.Config{
		BaseURL: srv.URL + "/api", ClientID: "a", ClientSecret: "b", Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	// 10-minute token: replaced when 5 minutes remain.
	for _, step := range []struct {
		advance    time.Duration
		wantGrants int64
	}{{0, 1}, {4*time.Minute + 59*time.Second, 1}, {time.Second, 2}} {
		clock.Advance(step.advance)
		job, err := c.Job(context.Background(), 7)
		if err != nil || job.ID != 7 {
			t.Fatalf("Job = %+v, %v", job, err)
		}
		if got := grants.Load(); got != step.wantGrants {
			t.Fatalf("at %s: grants = %d, want %d", clock.Now().Sub(testT0), got, step.wantGrants)
		}
	}
}

func TestWrongCredentialsArePermanent(t *testing.T) {
	s := newSimulator(t, simOptions{})
	c := s.client(t, func(cfg *servicetrade.Config) { cfg.ClientSecret = "wrong" })
	_, err := c.Job(context.Background(), s.acct.Jobs()[0].ID)
	if failure.StatusOf(err) != http.StatusUnauthorized || !failure.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent 401 from the token endpoint", err)
	}
	if got := s.api.Stats(); got.TokenRejections != 1 || got.Requests != 0 {
		t.Errorf("stats = %+v, want 1 rejected grant and no resource request", got)
	}
}

// conflictStore plays another replica: on the first Save it saves other instead and
// reports the conflict, as a KV store does when someone else saved first.
type conflictStore struct {
	servicetrade.TokenStore
	other     *oauth2.Token
	conflicts int
}

func (s *conflictStore) Save(ctx context.Context, tok *oauth2.Token) error {
	if s.conflicts == 0 {
		s.conflicts++
		if err := s.TokenStore.Save(ctx, s.other); err != nil {
			return err
		}
		return fmt.Errorf("saving: %w", servicetrade.ErrTokenConflict)
	}
	return s.TokenStore.Save(ctx, tok)
}

// bearerRecorder records the bearer token of every resource request.
type bearerRecorder struct {
	base   http.RoundTripper
	mu     sync.Mutex
	tokens []string
}

func (b *bearerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		b.mu.Lock()
		b.tokens = append(b.tokens, auth)
		b.mu.Unlock()
	}
	return b.base.RoundTrip(r)
}

// TestSaveConflictAdoptsStoredToken: a client whose Save loses the race uses the token
// the other replica saved, so that replicas converge on one token.
func TestSaveConflictAdoptsStoredToken(t *testing.T) {
	s := newSimulator(t, simOptions{})
	ctx := context.Background()
	id := s.acct.Jobs()[0].ID

	otherStore := servicetrade.NewMemoryTokenStore()
	if _, err := s.client(t, func(c *servicetrade.Config) { c.Tokens = otherStore }).Job(ctx, id); err != nil {
		t.Fatal(err)
	}
	other, err := otherStore.Load(ctx)
	if err != nil || other == nil {
		t.Fatalf("other replica's token: %v, %v", other, err)
	}

	rec := &bearerRecorder{base: s.srv.Client().Transport}
	store := &conflictStore{TokenStore: servicetrade.NewMemoryTokenStore(), other: other}
	c := s.client(t, func(c *servicetrade.Config) {
		c.Tokens = store
		c.HTTPClient = &http.Client{Transport: rec}
	})
	for range 2 {
		if _, err := c.Job(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.grants(); got != 2 {
		t.Errorf("grants = %d, want 2 (one per replica)", got)
	}
	if len(rec.tokens) != 2 || rec.tokens[0] != other.AccessToken || rec.tokens[1] != other.AccessToken {
		t.Errorf("the client sent its own token, not the one saved first")
	}
}
