package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldstream/fieldstream/pkg/natstest"
)

// natsConfig gives the test a nats CLI configuration of its own: natscontext reads
// contexts from $XDG_CONFIG_HOME/nats (HOME is set too, for code that looks there).
// save writes a context as `nats context save` does, selectContext as `nats context
// select` does.
func natsConfig(t *testing.T) (save func(name string, ctx map[string]string), selectContext func(name string)) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", dir)
	t.Setenv("NATS_URL", "")
	write := func(path string, data []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	save = func(name string, ctx map[string]string) {
		data, err := json.Marshal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		write(filepath.Join(dir, "nats", "context", name+".json"), data)
	}
	selectContext = func(name string) { write(filepath.Join(dir, "nats", "context.txt"), []byte(name)) }
	return save, selectContext
}

// TestConnectLikeTheNatsCLI: a named context decides the server; the selected one does
// unless a server is named; otherwise --server.
func TestConnectLikeTheNatsCLI(t *testing.T) {
	byContext, byURL := natstest.RunServer(t), natstest.RunServer(t)
	save, selectContext := natsConfig(t)
	save("ops", map[string]string{"url": byContext.ClientURL(), "inbox_prefix": "_INBOX_ops"})
	save("other", map[string]string{"url": byURL.ClientURL()})

	tests := []struct {
		name        string
		selected    string
		flags       connectionFlags
		serverGiven bool
		want        string // the server's client URL
		wantInbox   string
		wantErr     string // the error starts so
	}{
		{name: "named context wins over --server", flags: connectionFlags{Server: byURL.ClientURL(), Context: "ops"}, serverGiven: true,
			want: byContext.ClientURL(), wantInbox: "_INBOX_ops."},
		{name: "selected context when no server is named", selected: "ops", flags: connectionFlags{Server: byURL.ClientURL()},
			want: byContext.ClientURL()},
		{name: "--server wins over the selected context", selected: "ops", flags: connectionFlags{Server: byURL.ClientURL()}, serverGiven: true,
			want: byURL.ClientURL(), wantInbox: "_INBOX."},
		{name: "named context wins over the selected one", selected: "ops", flags: connectionFlags{Context: "other"},
			want: byURL.ClientURL()},
		{name: "nothing selected: --server", flags: connectionFlags{Server: byURL.ClientURL()}, want: byURL.ClientURL()},
		{name: "unknown context", flags: connectionFlags{Server: byURL.ClientURL(), Context: "nope"},
			wantErr: `connect with nats context "nope": `},
		{name: "unreachable server", flags: connectionFlags{Server: "nats://127.0.0.1:1"}, serverGiven: true,
			wantErr: "connect to NATS at nats://127.0.0.1:1: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			selectContext(tt.selected)
			nc, err := tt.flags.connect(tt.serverGiven, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want one starting %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if got := nc.ConnectedUrl(); got != tt.want {
				t.Errorf("connected to %s, want %s", got, tt.want)
			}
			if got := nc.NewInbox(); tt.wantInbox != "" && !strings.HasPrefix(got, tt.wantInbox) {
				t.Errorf("inbox %s, want prefix %s", got, tt.wantInbox)
			}
		})
	}
}
