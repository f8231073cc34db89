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

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/streams"
	"github.com/fieldstream/fieldstream/test/harness"
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
	want, err := streams.Definitions()
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
	if _, err := streams.ApplyConfigs(ctx, js, want); err != nil {
		t.Fatalf("apply over CLI-made streams: %v", err)
	}
}

// TestConsumerDefinitionsMatchServices adds every streams/consumers/*.json with the real
// nats CLI to one server, lets the services create their consumers on another, and checks
// the two agree, so the files stay the truth an operator can rely on.
func TestConsumerDefinitionsMatchServices(t *testing.T) {
	cli := natsCLI(t)
	ctx := context.Background()
	cliSrv := natstest.RunServer(t)
	_, cliJS := natstest.Connect(t, cliSrv)
	if _, err := streams.Apply(ctx, cliJS, streams.Options{}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../streams/consumers/*.json")
	if len(files) != 3 {
		t.Fatalf("streams/consumers has %d definitions, want assets, workorders and payroll", len(files))
	}
	for _, f := range files {
		if out, err := exec.Command(cli, "--server", cliSrv.ClientURL(), "consumer", "add", "EVENTS", "--config", f).CombinedOutput(); err != nil {
			t.Fatalf("nats consumer add --config %s: %v\n%s", f, err, out)
		}
	}
	e := newPipelineEnv(t, simulator.StackConfig{})
	e.start(consumer.Config{AckWait: 30 * time.Second, MaxDeliver: 10, MaxAckPending: 1000, NakDelay: time.Second})
	for _, name := range harness.Consumers {
		want, err := cliJS.Consumer(ctx, "EVENTS", name)
		if err != nil {
			t.Fatalf("%s not created from its file: %v", name, err)
		}
		got, err := e.JS.Consumer(ctx, "EVENTS", name)
		if err != nil {
			t.Fatal(err)
		}
		w, g := want.CachedInfo().Config, got.CachedInfo().Config
		if w.Description != g.Description || !slices.Equal(w.FilterSubjects, g.FilterSubjects) || w.AckPolicy != g.AckPolicy ||
			w.AckWait != g.AckWait || w.MaxDeliver != g.MaxDeliver || w.MaxAckPending != g.MaxAckPending || w.DeliverPolicy != g.DeliverPolicy ||
			w.Metadata["fieldstream.dev/consumer"] != g.Metadata["fieldstream.dev/consumer"] {
			t.Errorf("%s: the file says\n %+v\nthe service creates\n %+v", name, w, g)
		}
	}
}
