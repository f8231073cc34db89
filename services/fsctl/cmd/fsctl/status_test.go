package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/tenant"
)

// TestStatusShowsRejectedTenantRecords: a tenant record the gateway cannot parse shows in
// `fsctl status`, with the revision the gateway serves instead (or that it serves none),
// and never a secret.
func TestStatusShowsRejectedTenantRecords(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	kv, err := tenant.OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenant.Put(ctx, kv, "acme", tenant.Config{ServiceTradeToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ name, rec string }{
		{"acme", `{"servicetrade_token":"tok","rate_per_second":-5}`},
		{"newco", `{"standard_secrets":["whsec_c2VjcmV0"]}`},
	} {
		if _, err := kv.Put(ctx, r.name, []byte(r.rec)); err != nil {
			t.Fatal(err)
		}
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"--server", srv.ClientURL(), "setup"}, &out, &errOut); err != nil {
		t.Fatalf("fsctl setup: %v\n%s", err, errOut.String())
	}
	out.Reset()
	if err := run(ctx, []string{"--server", srv.ClientURL(), "status"}, &out, &errOut); err != nil {
		t.Fatalf("fsctl status: %v\n%s", err, errOut.String())
	}
	text := out.String()
	for _, want := range []string{"REJECTED TENANT RECORD", "acme  ", "revision 1", "negative rate", "newco", "tenant not served"} {
		if !strings.Contains(text, want) {
			t.Errorf("fsctl status lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "c2VjcmV0") {
		t.Errorf("fsctl status shows a secret:\n%s", text)
	}
	out.Reset()
	if err := run(ctx, []string{"--server", srv.ClientURL(), "status", "--json"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"revision": 2,`) || !strings.Contains(out.String(), `"serving_revision": 1`) {
		t.Errorf("fsctl status --json:\n%s", out.String())
	}
}
