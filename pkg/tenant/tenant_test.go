package tenant_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/tenant"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		tenant  string
		value   string
		wantErr error
	}{
		{name: "full", tenant: "demo", value: `{"servicetrade_token":"t","standard_secrets":["` + secret + `"],"rate_per_second":5,"burst":10}`},
		{name: "empty record", tenant: "demo", value: `{}`},
		{name: "bad name", tenant: "de.mo", value: `{}`, wantErr: tenant.ErrInvalid},
		{name: "bad secret", tenant: "demo", value: `{"standard_secrets":["whsec_!!"]}`, wantErr: tenant.ErrInvalid},
		{name: "negative rate", tenant: "demo", value: `{"rate_per_second":-1}`, wantErr: tenant.ErrInvalid},
		{name: "not json", tenant: "demo", value: `servicetrade_token=x`, wantErr: tenant.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tenant.Parse(tt.tenant, []byte(tt.value))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "MfKQ") {
				t.Fatalf("error reveals a secret: %v", err)
			}
		})
	}
}

func TestDirectoryFollowsBucket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	kv, err := tenant.OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenant.Put(ctx, kv, "acme", tenant.Config{ServiceTradeToken: "one"}); err != nil {
		t.Fatal(err)
	}
	dir, err := tenant.Watch(ctx, kv, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Stop()
	if got, ok := dir.Lookup("acme"); !ok || got.ServiceTradeToken != "one" {
		t.Fatalf("initial load: %v %v", got, ok)
	}

	if err := tenant.Put(ctx, kv, "acme", tenant.Config{ServiceTradeToken: "two", StandardSecrets: []string{secret}}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "re-keyed tenant seen", func() bool {
		got, ok := dir.Lookup("acme")
		return ok && got.ServiceTradeToken == "two" && len(got.StandardSecrets) == 1
	})

	if _, err := kv.Put(ctx, "acme", []byte(`{"standard_secrets":["nope"]}`)); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "invalid record rejected", func() bool { return len(dir.Rejected()) == 1 })
	if got, ok := dir.Lookup("acme"); !ok || got.ServiceTradeToken != "two" {
		t.Fatalf("after a bad record: %v %v, want the last good record served", got, ok)
	}

	if err := tenant.Put(ctx, kv, "beta", tenant.Config{ServiceTradeToken: "b"}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "new tenant seen", func() bool { _, ok := dir.Lookup("beta"); return ok })
	if err := kv.Delete(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "deleted tenant gone", func() bool { _, ok := dir.Lookup("beta"); return !ok })
}

// TestDirectoryOutlivesItsSetupDeadline: the context given to Watch bounds the initial load
// only. A directory that stopped following the bucket when its set-up deadline passed
// answered 404 to every tenant added later (the all-in-one binary did, 30 s after start).
func TestDirectoryOutlivesItsSetupDeadline(t *testing.T) {
	_, js := natstest.Connect(t, natstest.RunServer(t))
	kv, err := tenant.OpenBucket(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	setup, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	dir, err := tenant.Watch(setup, kv, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Stop()
	cancel() // the set-up is over
	if err := tenant.Put(t.Context(), kv, "late", tenant.Config{ServiceTradeToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "tenant added after set-up is served", func() bool {
		_, ok := dir.Lookup("late")
		return ok
	})
}

// TestBadRecordKeepsLastGoodOne: a record that does not parse leaves the tenant served
// from its last good record — ServiceTrade counts the 404 of an unserved tenant as
// delivered and drops the events — and is listed by Rejected until a good record replaces
// it. A directory started after the bad record was written finds the good one in the
// key's history; a tenant that never had a good record is not served.
func TestBadRecordKeepsLastGoodOne(t *testing.T) {
	ctx := t.Context()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	kv, err := tenant.OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenant.Put(ctx, kv, "acme", tenant.Config{ServiceTradeToken: "good", RatePerSecond: 5}); err != nil {
		t.Fatal(err)
	}
	goodRev, _ := kv.Get(ctx, "acme")
	running, err := tenant.Watch(ctx, kv, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer running.Stop()
	badRev, err := kv.Put(ctx, "acme", []byte(`{"servicetrade_token":"typo","rate_per_second":"fast"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "newco", []byte(`{"standard_secrets":["whsec_short"]}`)); err != nil {
		t.Fatal(err)
	}
	want := []tenant.Rejection{
		{Tenant: "acme", Revision: badRev, Serving: goodRev.Revision()},
		{Tenant: "newco", Revision: badRev + 1},
	}
	check := func(t *testing.T, dir *tenant.Directory) {
		t.Helper()
		natstest.Eventually(t, 5*time.Second, "both bad records rejected", func() bool { return len(dir.Rejected()) == 2 })
		got := dir.Rejected()
		for i := range got {
			if got[i].Error == "" || strings.Contains(got[i].Error, "whsec_short") {
				t.Errorf("rejection %+v: want a reason that reveals no secret", got[i])
			}
			got[i].Error = ""
		}
		if !slices.Equal(got, want) {
			t.Errorf("Rejected() = %+v, want %+v", got, want)
		}
		if a, ok := dir.Lookup("acme"); !ok || a.ServiceTradeToken != "good" {
			t.Errorf("acme: %v %v, want its last good record", a, ok)
		}
		if _, ok := dir.Lookup("newco"); ok {
			t.Error("newco served without a good record")
		}
	}
	t.Run("running", func(t *testing.T) { check(t, running) })
	t.Run("started after", func(t *testing.T) {
		later, err := tenant.Watch(ctx, kv, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		defer later.Stop()
		check(t, later)
	})
	if err := tenant.Put(ctx, kv, "acme", tenant.Config{ServiceTradeToken: "fixed"}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "the fixed record served", func() bool {
		a, ok := running.Lookup("acme")
		return ok && a.ServiceTradeToken == "fixed" && len(running.Rejected()) == 1
	})
}
