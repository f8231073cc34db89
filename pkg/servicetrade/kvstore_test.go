package servicetrade_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
)

// TestKVStoreSharesToken: clients on one KV key — replicas, or a process after a
// restart — use one token, pick up the one another client refreshed, and recover from a
// revocation with one grant between them.
func TestKVStoreSharesToken(t *testing.T) {
	s := newSimulator(t, simOptions{})
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := context.Background()
	kv, err := servicetrade.OpenTokenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	replica := func() *servicetrade.Client {
		return s.client(t, func(cfg *servicetrade.Config) { cfg.Tokens = servicetrade.NewKVTokenStore(kv, "demo") })
	}
	a, b := replica(), replica()
	id := s.acct.Jobs()[0].ID
	fetch := func(c *servicetrade.Client, wantGrants int64, when string) {
		t.Helper()
		if _, err := c.Job(ctx, id); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if got := s.grants(); got != wantGrants {
			t.Fatalf("%s: grants = %d, want %d", when, got, wantGrants)
		}
	}

	fetch(a, 1, "a first")
	fetch(b, 1, "b first")
	fetch(replica(), 1, "after a restart")

	s.clock.Advance(70 * time.Second) // past the refresh point of the 2-minute token
	fetch(a, 2, "a at the refresh point")
	fetch(b, 2, "b at the refresh point")

	s.api.RevokeAllTokens()
	fetch(b, 3, "b after revocation")
	fetch(a, 3, "a after revocation")
	if got := s.api.Stats().Unauthorized; got != 2 {
		t.Errorf("unauthorized = %d, want one per client", got)
	}
}

func TestOpenTokenBucketTwice(t *testing.T) {
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := context.Background()
	first, err := servicetrade.OpenTokenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	second, err := servicetrade.OpenTokenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := second.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
		t.Fatalf("the second open does not see the first's key: %v", err)
	}
	if second.Bucket() != servicetrade.TokenBucket {
		t.Errorf("bucket = %q", second.Bucket())
	}
}

func TestKVTokenStore(t *testing.T) {
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := context.Background()
	kv, err := servicetrade.OpenTokenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	token := func(access string) *oauth2.Token {
		return &oauth2.Token{AccessToken: access, TokenType: "Bearer", RefreshToken: "r-" + access,
			Expiry: testT0.Add(2 * time.Minute), ExpiresIn: 120}
	}
	s1, s2 := servicetrade.NewKVTokenStore(kv, "acme"), servicetrade.NewKVTokenStore(kv, "acme")

	if tok, err := s1.Load(ctx); tok != nil || err != nil {
		t.Fatalf("empty store: Load = %v, %v; want nil, nil", tok, err)
	}
	steps := []struct {
		name    string
		store   servicetrade.TokenStore
		save    string // access token to save; "" to load
		want    string // loaded access token
		wantErr error
	}{
		{name: "s2 creates", store: s2, save: "A"},
		{name: "s1 has not seen A", store: s1, save: "B", wantErr: servicetrade.ErrTokenConflict},
		{name: "s1 loads A", store: s1, want: "A"},
		{name: "s1 replaces A", store: s1, save: "B"},
		{name: "s2 has not seen B", store: s2, save: "C", wantErr: servicetrade.ErrTokenConflict},
		{name: "s2 loads B", store: s2, want: "B"},
		{name: "s2 replaces B", store: s2, save: "C"},
	}
	for _, st := range steps {
		if st.save != "" {
			if err := st.store.Save(ctx, token(st.save)); !errors.Is(err, st.wantErr) {
				t.Fatalf("%s: Save = %v, want %v", st.name, err, st.wantErr)
			}
			continue
		}
		got, err := st.store.Load(ctx)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		want := token(st.want)
		if got.AccessToken != want.AccessToken || got.RefreshToken != want.RefreshToken || got.TokenType != want.TokenType ||
			!got.Expiry.Equal(want.Expiry) || got.ExpiresIn != want.ExpiresIn {
			t.Fatalf("%s: Load = %+v, want %+v", st.name, got, want)
		}
	}

	// An unreadable record is reported, and the next Save replaces it.
	if _, err := kv.Put(ctx, "acme", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Load(ctx); err == nil {
		t.Fatal("Load of an unreadable record: no error")
	}
	if err := s1.Save(ctx, token("D")); err != nil {
		t.Fatalf("Save over an unreadable record: %v", err)
	}
}
