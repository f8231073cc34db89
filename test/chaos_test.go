package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/test/chaos"
)

// buildChaosBinaries builds every binary a campaign runs into a fresh directory.
func buildChaosBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pkgs := []string{"github.com/nats-io/nats-server/v2"}
	for _, b := range chaos.Binaries[1:] {
		pkgs = append(pkgs, "github.com/fieldstream/fieldstream/services/"+b+"/cmd/"+b)
	}
	out, err := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, b := range chaos.Binaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestChaosShort is the short form of `make chaos`: six crash cycles (kill -9 or
// SIGSTOP of nats-server, the gateway or a consumer, with sink outages and 429 storms)
// under webhook load, against the real binaries, and a ledger that must balance with
// nothing lost, doubled or unexpected. The seed changes per run and is logged; a failure
// is replayed with `make chaos CHAOS_SEED=<seed> CHAOS_CYCLES=6`.
func TestChaosShort(t *testing.T) {
	bin := buildChaosBinaries(t)
	seed := time.Now().UnixNano() % 1_000_000_007
	t.Logf("seed %d", seed)
	const cycles = 6
	led, err := chaos.Run(t.Context(), chaos.Config{BinDir: bin, NATSConfig: "../deploy/nats-server.conf", Dir: t.TempDir(), Cycles: cycles, Seed: seed,
		Progress: func(line string) { t.Log(line) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(led.Line())
	if led.Verdict != "PASS" {
		b, _ := json.MarshalIndent(led, "", "  ")
		t.Errorf("seed %d: %s\n%s", seed, led.Line(), b)
	}
	crashes := -led.FaultsByKind["double"] // a double fault is two crashes in one cycle
	for kind, n := range led.FaultsByKind {
		if strings.HasPrefix(kind, "kill9:") || strings.HasPrefix(kind, "stop:") {
			crashes += n
		}
	}
	if crashes != cycles {
		t.Errorf("%d crash faults in %d cycles: %v", crashes, cycles, led.FaultsByKind)
	}
	if len(led.UnpromptedExits) > 0 {
		t.Errorf("processes died without a fault: %v", led.UnpromptedExits)
	}
}
