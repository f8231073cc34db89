package test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/streamdef"
	"github.com/fieldstream/fieldstream/streams"
)

// natsCLI finds the nats CLI; CI installs it (make tools), so there its absence fails.
func natsCLI(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nats CLI not installed; run make tools")
	}
	t.Skip("nats CLI not installed; run make tools")
	return ""
}

// TestNatsCLIAcceptsStreamFiles adds every file of streams/ with the real nats CLI and
// checks the server then holds exactly the definition our binaries apply, so the files and
// `nats stream add --config` stay interchangeable.
func TestNatsCLIAcceptsStreamFiles(t *testing.T) {
	cli := natsCLI(t)
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	want, err := streamdef.Load(streams.Files)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(streams.Files, "*.json")
	if len(names) < 2 {
		t.Fatalf("streams/ has %d definitions, want EVENTS and DLQ at least", len(names))
	}
	dir := t.TempDir()
	for _, name := range names {
		b, _ := fs.ReadFile(streams.Files, name)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(cli, "--server", srv.ClientURL(), "stream", "add", "--config", path).CombinedOutput()
		if err != nil {
			t.Fatalf("nats stream add --config %s: %v\n%s", name, err, out)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, w := range want {
		out, err := exec.Command(cli, "--server", srv.ClientURL(), "stream", "info", w.Name, "--json").Output()
		if err != nil {
			t.Fatalf("nats stream info %s: %v", w.Name, err)
		}
		var info struct {
			Config jetstream.StreamConfig `json:"config"`
		}
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatal(err)
		}
		got := info.Config
		if !slices.Equal(got.Subjects, w.Subjects) || got.Duplicates != w.Duplicates || got.MaxAge != w.MaxAge ||
			got.Storage != w.Storage || got.Retention != w.Retention || got.Description != w.Description {
			t.Errorf("%s as added by the CLI differs from the file:\n got %+v\nwant %+v", w.Name, got, w)
		}
	}
	// Our start-up apply over CLI-made streams changes nothing and loses nothing.
	if err := streamdef.Apply(ctx, js, want); err != nil {
		t.Fatalf("apply over CLI-made streams: %v", err)
	}
}
