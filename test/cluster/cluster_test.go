package cluster

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// Ryuk, testcontainers' reaper, is an image that cannot be pulled here: the tests
	// remove what they start themselves (Cluster.Close), also on failure.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	os.Exit(m.Run())
}

// TestClusterUnderFaults is the short form of `make chaos-cluster`: the images of this
// code on a private Docker network — three NATS nodes (TLS, nkey users, R3, sync always),
// two gateways, two replicas of each consumer service, the simulators feeding both
// gateways with ServiceTrade and signed Standard Webhooks — while a node is cut off the
// network, the EVENTS leader's container is killed, a consumer replica is killed and one
// is added under load. The fault campaign's ledger judges it: nothing acknowledged lost,
// nothing applied twice, no older write over a newer one, no 2xx for an event not stored.
// The seed is logged; `make chaos-cluster CHAOS_SEED=<seed>` replays its choices.
func TestClusterUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the images on Docker")
	}
	ctx := t.Context()
	if err := DockerAvailable(ctx); err != nil {
		t.Skipf("no Docker engine answers (%v): the container tests need one (CI's machine has one)", err)
	}
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tag := "test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := BuildImages(ctx, repo, tag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := RemoveImages(ctx, tag); err != nil {
			t.Logf("remove images of tag %s: %v", tag, err)
		}
	})
	dir, err := os.MkdirTemp("", "fieldstream-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	seed := time.Now().UnixNano() % 1_000_000_007
	t.Logf("seed %d, images %s, run directory %s", seed, tag, dir)
	kinds := []string{FaultPartition, FaultLeaderKill, FaultReplicaKill, FaultScale}
	res, err := RunCampaign(ctx, CampaignConfig{Seed: seed, Faults: len(kinds), Kinds: kinds,
		Cluster: Config{Tag: tag, Dir: dir, Repo: repo, Progress: func(line string) { t.Log(line) }}})
	if err != nil {
		t.Fatalf("%v (logs in %s/logs)", err, dir)
	}
	t.Log(res.Line())
	led := res.Ledger
	if led.Verdict != "PASS" {
		b, _ := json.MarshalIndent(led, "", "  ")
		t.Errorf("seed %d: %s\n%s\nlogs and observations kept in %s", seed, res.Line(), b, dir)
	}
	if led.Faults != len(kinds) {
		t.Errorf("%d faults injected, want %d: %v", led.Faults, len(kinds), led.FaultsByKind)
	}
	if len(led.UnpromptedExits) > 0 {
		t.Errorf("containers exited without a fault: %s", strings.Join(led.UnpromptedExits, ", "))
	}
	if !t.Failed() {
		os.RemoveAll(dir)
	}
}
