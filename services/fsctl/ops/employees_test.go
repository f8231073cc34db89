package ops_test

import (
	"testing"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/services/payroll"
)

// TestImportEmployeesAndPutTenant: what an operator (or deploy/compose's set-up) stores is
// what payroll and the gateway read.
func TestImportEmployeesAndPutTenant(t *testing.T) {
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := t.Context()
	n, err := ops.ImportEmployees(ctx, js, map[int64]string{2274033731790001: "E001", 2274033731790002: "E002"})
	if err != nil || n != 2 {
		t.Fatalf("ImportEmployees = %d, %v; want 2", n, err)
	}
	emps, err := payroll.OpenEmployees(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if code, ok, err := emps.EECode(ctx, 2274033731790002); err != nil || !ok || code != "E002" {
		t.Errorf("EECode = %q, %v, %v; want E002", code, ok, err)
	}
	if _, err := ops.ImportEmployees(ctx, js, map[int64]string{1: ""}); err == nil {
		t.Error("an empty employee code was imported")
	}

	cfg := tenant.Config{ServiceTradeToken: "dev-token", StandardSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}
	if err := ops.PutTenant(ctx, js, "demo", cfg); err != nil {
		t.Fatal(err)
	}
	kv, err := tenant.OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.Parse("demo", e.Value()); err != nil {
		t.Errorf("stored tenant does not parse: %v", err)
	}
	if err := ops.PutTenant(ctx, js, "demo", tenant.Config{StandardSecrets: []string{"not-a-secret"}}); err == nil {
		t.Error("a tenant with a malformed secret was stored")
	}
}
