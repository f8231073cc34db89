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
			Expiry: time.Date(2026, 3, 2, 9, 2, 0, 0, time.UTC), ExpiresIn: 120}
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
