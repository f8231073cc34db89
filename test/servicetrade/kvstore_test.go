package servicetrade_test

import (
	"context"
	"testing"
	"time"

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
