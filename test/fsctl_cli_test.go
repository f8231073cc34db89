package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/streams"
)

// buildFsctl builds the fsctl command for this test.
func buildFsctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fsctl")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/fieldstream/fieldstream/services/fsctl/cmd/fsctl").CombinedOutput()
	if err != nil {
		t.Fatalf("build fsctl: %v\n%s", err, out)
	}
	return bin
}

// TestFsctlConnectsLikeTheNatsCLI runs the real fsctl binary: with a nats CLI context
// (selected, or named with --context), with --server, and with NATS_URL; and a failure is
// one clear line.
func TestFsctlConnectsLikeTheNatsCLI(t *testing.T) {
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	if _, err := streams.Apply(t.Context(), js, streams.Options{}); err != nil {
		t.Fatal(err)
	}
	bin := buildFsctl(t)
	home := t.TempDir()
	ctxDir := filepath.Join(home, ".config", "nats", "context")
	if err := os.MkdirAll(ctxDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ctxFile, _ := json.Marshal(map[string]string{"description": "test", "url": srv.ClientURL()})
	if err := os.WriteFile(filepath.Join(ctxDir, "fieldstream-test.json"), ctxFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".config", "nats", "context.txt"), []byte("fieldstream-test"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(extra ...string) []string {
		var out []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "NATS_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
				out = append(out, kv)
			}
		}
		return append(out, append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}, extra...)...)
	}
	tests := []struct {
		name string
		args []string
		env  []string
	}{
		{name: "selected context", args: []string{"--json", "status"}, env: env()},
		{name: "named context", args: []string{"--context", "fieldstream-test", "--json", "status"}, env: env()},
		{name: "server flag", args: []string{"--server", srv.ClientURL(), "--json", "status"}, env: env()},
		{name: "NATS_URL", args: []string{"--json", "status"}, env: env("NATS_URL=" + srv.ClientURL())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = tt.env
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("fsctl %v: %v", tt.args, err)
			}
			var st ops.Status
			if err := json.Unmarshal(out, &st); err != nil || len(st.Streams) != 2 {
				t.Fatalf("fsctl %v printed %s (%v)", tt.args, out, err)
			}
		})
	}
	cmd := exec.Command(bin, "--server", "nats://127.0.0.1:1", "status")
	cmd.Env = env()
	out, err := cmd.CombinedOutput()
	if err == nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 || !strings.HasPrefix(string(out), "fsctl: connect to NATS") {
		t.Fatalf("an unreachable server: exit %v, output %q; want one line and a failure", err, out)
	}
}
