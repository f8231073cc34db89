package test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/test/harness"
)

// TestAllInOneServesTenantsAddedLater runs bin/fieldstream as `make run` does and adds a
// tenant once its set-up deadline has passed, as a new user would: `nats kv put
// fieldstream_tenants acme …`, then a ServiceTrade delivery. The all-in-one binary used to
// hand the tenant watch its 30-second set-up context, so every tenant added later got 404
// unknown_tenant, which ServiceTrade counts as delivered and drops.
func TestAllInOneServesTenantsAddedLater(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := harness.Build(ctx, t.TempDir(), "fieldstream", "github.com/fieldstream/fieldstream/services/fieldstream/cmd/fieldstream")
	if err != nil {
		t.Fatal(err)
	}
	natsPort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	httpPort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	const setupTimeout = time.Second
	var out bytes.Buffer
	cmd := exec.Command(bin, "-data-dir", filepath.Join(t.TempDir(), "data"), "-nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort),
		"-http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "-sim-servicetrade-addr", "127.0.0.1:0", "-sim-assets-addr", "127.0.0.1:0",
		"-sim-workorders-addr", "127.0.0.1:0", "-sim-paycom-addr", "127.0.0.1:0", "-sim-rate", "0", "-poll-interval", "0",
		"-setup-timeout", setupTimeout.String())
	cmd.Stdout, cmd.Stderr = &out, &out
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := <-exited; err != nil {
			t.Errorf("fieldstream did not stop cleanly on SIGINT: %v\n%s", err, out.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	natstest.Eventually(t, 60*time.Second, "fieldstream ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// Not waiting for work: the defect shows only once the set-up deadline has passed.
	<-time.After(time.Until(started.Add(2 * setupTimeout)))

	_, js := natstest.ConnectURL(t, fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	kv, err := tenant.OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenant.Put(ctx, kv, "acme", tenant.Config{ServiceTradeToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	body := `{"messageId":"5b0f3c1e-8a2d-4a51-9a7e-2f0d6c1b9e44","timestamp":"1767106200","data":[{"action":"updated","timestamp":1767106195,"userId":2274033731790001,"entity":{"type":"job","id":2274033731792769,"uri":"https://api.servicetrade.com/api/job/2274033731792769"},"changeset":[]}]}`
	var status int
	natstest.Eventually(t, 10*time.Second, "a delivery to the tenant added later is stored", func() bool {
		resp, err := http.Post(base+"/hooks/acme/servicetrade/tok", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		status = resp.StatusCode
		return status == http.StatusOK
	})
}
