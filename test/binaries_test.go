package test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/fieldstream/fieldstream/test/harness"
)

// processBinaries are the real binaries the process-level tests run: nats-server from the
// pinned module and the gateway, built once per test binary into a directory TestMain
// removes.
type processBinaries struct {
	NATSServer, Gateway string
}

var (
	binariesOnce sync.Once
	binariesDir  string
	binaries     processBinaries
	binariesErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binariesDir != "" {
		os.RemoveAll(binariesDir)
	}
	os.Exit(code)
}

// buildBinaries builds nats-server and the gateway the first time a test asks for them.
func buildBinaries(t testing.TB) processBinaries {
	t.Helper()
	binariesOnce.Do(func() {
		if binariesDir, binariesErr = os.MkdirTemp("", "fieldstream-test-bin-"); binariesErr != nil {
			return
		}
		ctx := context.Background()
		if binaries.NATSServer, binariesErr = harness.Build(ctx, binariesDir, "nats-server", "github.com/nats-io/nats-server/v2"); binariesErr != nil {
			return
		}
		binaries.Gateway, binariesErr = harness.Build(ctx, binariesDir, "gateway", "github.com/fieldstream/fieldstream/services/gateway/cmd/gateway")
	})
	if binariesErr != nil {
		t.Fatal(binariesErr)
	}
	return binaries
}
