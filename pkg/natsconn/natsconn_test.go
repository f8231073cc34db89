package natsconn_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/pkg/natsconn"
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

// TestConnectWithContext: a context named in Options, or the selected one when the caller
// asks for it, decides the server; the selected one is never used unasked.
func TestConnectWithContext(t *testing.T) {
	byContext, byURL := natstest.RunServer(t), natstest.RunServer(t)
	save, selectContext := natsConfig(t)
	save("ops", map[string]string{"url": byContext.ClientURL(), "inbox_prefix": "_INBOX_ops"})
	save("other", map[string]string{"url": byURL.ClientURL()})

	tests := []struct {
		name       string
		selected   string
		opts       natsconn.Options
		want       string // the server's client URL
		wantInbox  string
		wantErr    string // the ConnectError's message starts so
		wantErrCtx string
	}{
		{name: "named context wins over URL", opts: natsconn.Options{URL: byURL.ClientURL(), Context: "ops"},
			want: byContext.ClientURL(), wantInbox: "_INBOX_ops."},
		{name: "InboxPrefix wins over the context's", opts: natsconn.Options{Context: "ops", InboxPrefix: "_INBOX_mine"},
			want: byContext.ClientURL(), wantInbox: "_INBOX_mine."},
		{name: "selected context when asked", selected: "ops", opts: natsconn.Options{URL: byURL.ClientURL(), UseSelectedContext: true},
			want: byContext.ClientURL()},
		{name: "selected context ignored unless asked", selected: "ops", opts: natsconn.Options{URL: byURL.ClientURL()},
			want: byURL.ClientURL(), wantInbox: "_INBOX."},
		{name: "named context wins over the selected one", selected: "ops", opts: natsconn.Options{Context: "other", UseSelectedContext: true},
			want: byURL.ClientURL()},
		{name: "nothing selected: URL", opts: natsconn.Options{URL: byURL.ClientURL(), UseSelectedContext: true},
			want: byURL.ClientURL()},
		{name: "unknown context", opts: natsconn.Options{URL: byURL.ClientURL(), Context: "nope"},
			wantErr: `connect with nats context "nope": `, wantErrCtx: "nope"},
		{name: "unreachable server", opts: natsconn.Options{URL: "nats://127.0.0.1:1"},
			wantErr: "connect to NATS at nats://127.0.0.1:1: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			selectContext(tt.selected)
			nc, err := natsconn.Connect(tt.opts, "natsconn-test", zerolog.Nop())
			if tt.wantErr != "" {
				var ce *natsconn.ConnectError
				if !errors.As(err, &ce) || ce.Context != tt.wantErrCtx || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want a *ConnectError for context %q starting %q", err, tt.wantErrCtx, tt.wantErr)
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

// TestContextFlag: -nats-context is filled from FS_NATS_CONTEXT, else NATS_CONTEXT, as the
// nats CLI's variable; the command line wins over both.
func TestContextFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "NATS_CONTEXT", env: map[string]string{"NATS_CONTEXT": "ops"}, want: "ops"},
		{name: "FS_NATS_CONTEXT first", env: map[string]string{"NATS_CONTEXT": "ops", "FS_NATS_CONTEXT": "fs"}, want: "fs"},
		{name: "command line first", args: []string{"-nats-context", "cli"}, env: map[string]string{"NATS_CONTEXT": "ops"}, want: "cli"},
		{name: "none", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o natsconn.Options
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			o.RegisterFlags(fs, "nats://127.0.0.1:4222")
			if err := envflag.Parse(fs, tt.args, "FS", natsconn.EnvFallbacks, func(k string) string { return tt.env[k] }); err != nil {
				t.Fatal(err)
			}
			if o.Context != tt.want {
				t.Errorf("Context = %q, want %q", o.Context, tt.want)
			}
		})
	}
}
