package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/test/harness"
)

// storageFault exhausts JetStream's storage and gives it back, in one of two ways.
type storageFault struct {
	name string
	// prepare returns the server's configuration with its store in dir, or skips the test.
	prepare func(t *testing.T, dir string) harness.NodeConfig
	// exhaust leaves only a little of the storage free; restore makes room again.
	exhaust func(t *testing.T, js jetstream.JetStream, node *harness.Node)
	restore func(t *testing.T, js jetstream.JetStream, node *harness.Node)
}

// TestStorageExhausted runs nats-server and the real gateway binary as processes, drives
// signed webhook load while JetStream runs out of storage, then gives the storage back. While
// storage is exhausted every answer is a 2xx for events really stored or a 503 with
// Retry-After; once space returns ingest resumes, and nothing answered 2xx is missing from
// EVENTS. Storage runs out in two ways:
//
//   - "storage limit": the server's max_file_store, filled by another stream and freed by
//     deleting it. Runs everywhere.
//   - "full file system": the store on a size-limited tmpfs, filled by a file and freed by
//     removing it. On a write error such as ENOSPC nats-server (2.15) marks the stream's
//     store failed and refuses every later write to it, so freeing space is not enough: the
//     operator restarts nats-server, and the gateway reconnects by itself. Skipped where
//     mount is not permitted (it needs root).
func TestStorageExhausted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nats-server and the gateway as processes")
	}
	for _, f := range []storageFault{
		{
			name: "storage limit",
			prepare: func(t *testing.T, dir string) harness.NodeConfig {
				return harness.NodeConfig{Name: "n1", StoreDir: filepath.Join(dir, "store"), MaxFileStore: 16 << 20}
			},
			exhaust: fillWithBallastStream,
			restore: func(t *testing.T, js jetstream.JetStream, _ *harness.Node) {
				if err := js.DeleteStream(t.Context(), "BALLAST"); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "full file system",
			prepare: func(t *testing.T, dir string) harness.NodeConfig {
				disk := mountTmpfs(t, filepath.Join(dir, "disk"), 64<<20)
				// A limit above the disk's size, so that the disk is what runs out.
				return harness.NodeConfig{Name: "n1", StoreDir: filepath.Join(disk, "store"), MaxFileStore: 1 << 30}
			},
			exhaust: func(t *testing.T, _ jetstream.JetStream, node *harness.Node) {
				fillDisk(t, filepath.Join(filepath.Dir(node.StoreDir), "ballast"), 2<<20)
			},
			restore: func(t *testing.T, _ jetstream.JetStream, node *harness.Node) {
				if err := os.Remove(filepath.Join(filepath.Dir(node.StoreDir), "ballast")); err != nil {
					t.Fatal(err)
				}
				node.Stop()
				if err := node.Start(); err != nil {
					t.Fatal(err)
				}
				if err := harness.WaitJetStream(t.Context(), node.URL, 60*time.Second); err != nil {
					t.Fatal(err)
				}
			},
		},
	} {
		t.Run(f.name, func(t *testing.T) { testStorageExhausted(t, f) })
	}
}

func testStorageExhausted(t *testing.T, f storageFault) {
	bins := buildBinaries(t)
	ctx := t.Context()
	dir := t.TempDir()
	node, err := harness.StartNode(ctx, bins.NATSServer, dir, f.prepare(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	_, js := natstest.ConnectURL(t, node.URL)
	putLoadTenant(t, js)
	gw := startGateway(t, bins.Gateway, node.URL, filepath.Join(dir, "gateway.log"), "-log-level", "warn")

	f.exhaust(t, js, node)
	faultAt := time.Now()
	load := startLoad(t, gw.URL)
	// A stream that failed to write does not answer at all; the gateway notices and
	// answers at once.
	natstest.Eventually(t, 60*time.Second, "16 requests refused once storage ran out", func() bool {
		return load.Count(func(a Answer) bool { return !a.OK() }) >= 16
	})
	exhaustedAt := time.Now()
	natstest.Eventually(t, 60*time.Second, "16 more requests refused while storage is exhausted", func() bool {
		return load.Count(func(a Answer) bool { return !a.OK() && a.Sent.After(exhaustedAt) }) >= 16
	})
	f.restore(t, js, node)
	restoredAt := time.Now()
	natstest.Eventually(t, 60*time.Second, "100 requests sent after space returned answered 2xx\n"+node.LogTail(3000), func() bool {
		return load.Count(func(a Answer) bool { return a.OK() && a.Sent.After(restoredAt) }) >= 100
	})
	answers := load.Stop()

	stored, err := harness.StoredIDs(ctx, js, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	ledger := harness.Reconcile(answers, stored)
	if !ledger.Balanced() {
		t.Errorf("ledger does not balance: %s\ngateway log:\n%s", ledger, gw.LogTail(3000))
	}
	// A 2xx while storage is exhausted can only be for events stored before (a retry that
	// JetStream deduplicated); one that claims to have stored new events is false.
	var storedWhileExhausted int
	var resumed time.Time
	for _, a := range answers {
		var body struct{ Stored int }
		if a.OK() && a.Sent.After(exhaustedAt) && a.Answered.Before(restoredAt) && json.Unmarshal([]byte(a.Body), &body) == nil && body.Stored > 0 {
			storedWhileExhausted++
		}
		if a.OK() && a.Sent.After(restoredAt) && (resumed.IsZero() || a.Answered.Before(resumed)) {
			resumed = a.Answered
		}
	}
	if storedWhileExhausted > 0 {
		t.Errorf("%d requests sent while storage was exhausted were answered 2xx with new events stored", storedWhileExhausted)
	}
	p99, refusals := unavailableAnswerP99(answers, faultAt, restoredAt)
	t.Logf("storage_exhausted fault=%q unavailable_answer_p99_ms=%d unavailable_answers=%d acked=%d refused_503=%d lost=%d doubled=%d requests=%d resume_ms=%d",
		f.name, p99.Milliseconds(), refusals, ledger.Acked, ledger.Refused, len(ledger.Lost), len(ledger.Doubled), ledger.Requests, resumed.Sub(restoredAt).Milliseconds())
}

// fillWithBallastStream stores 256 KiB messages in a stream BALLAST until JetStream refuses
// one for want of storage, then deletes a few, so that EVENTS has about a mebibyte left.
func fillWithBallastStream(t *testing.T, js jetstream.JetStream, _ *harness.Node) {
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BALLAST", Subjects: []string{"ballast.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("b"), 256<<10)
	var seqs []uint64
	for {
		ack, err := js.Publish(ctx, fmt.Sprintf("ballast.%d", len(seqs)), chunk)
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) {
			t.Logf("storage full after %d ballast messages: %v", len(seqs), err)
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if seqs = append(seqs, ack.Sequence); len(seqs) > 1000 {
			t.Fatal("JetStream never refused a message: is max_file_store set?")
		}
	}
	s, err := js.Stream(ctx, "BALLAST")
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range seqs[len(seqs)-4:] {
		if err := s.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
}

// mountTmpfs mounts a tmpfs of size bytes at dir, unmounted by t.Cleanup after everything
// registered later; it skips the test where mounting is not permitted.
func mountTmpfs(t *testing.T, dir string, size int64) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root in a Linux container or host): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes a file at path until its file system is full, then shrinks it so that
// headroom bytes are free.
func fillDisk(t *testing.T, path string, headroom int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	var size int64
	for {
		n, err := f.Write(chunk)
		size += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(max(size-headroom, 0)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
