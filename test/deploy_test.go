package test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/streams"
	"github.com/fieldstream/fieldstream/test/harness"
)

// TestDeployConfig checks that deploy/nats-server.conf is a valid server configuration, keeps
// the durability it promises, requires TLS, and gives every service user a permissions list
// with its own reply inboxes and no wildcard over the whole JetStream API.
// TestSecureDeployment runs it.
func TestDeployConfig(t *testing.T) {
	root := t.TempDir()
	secrets, err := harness.WriteSecrets(filepath.Join(root, "etc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]string{} // public nkey → user
	for _, kv := range secrets.Env {
		name, pub, _ := strings.Cut(kv, "=")
		t.Setenv(name, pub)
		users[pub] = strings.ToLower(strings.TrimPrefix(name, "FS_NKEY_"))
	}
	conf, err := harness.DeployConfig("../deploy/nats-server.conf", root, "127.0.0.1:4222", "127.0.0.1:8222") // with the test's certificates
	if err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.JetStream || !opts.SyncAlways {
		t.Fatalf("JetStream %v, sync_interval always %v; want both", opts.JetStream, opts.SyncAlways)
	}
	// A 2xx must mean on disk: no stream may opt out of sync_interval: always.
	cfgs, err := streams.Definitions()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfgs {
		if c.PersistMode != jetstream.DefaultPersistMode {
			t.Errorf("stream %s sets persist_mode %v: its acknowledgements would not wait for the disk", c.Name, c.PersistMode)
		}
	}
	if opts.TLSConfig == nil {
		t.Fatal("no tls block: clients would connect in plaintext")
	}
	if len(opts.Nkeys) != len(harness.DeployUsers) {
		t.Fatalf("%d nkey users, want one per %v", len(opts.Nkeys), harness.DeployUsers)
	}
	for _, u := range opts.Nkeys {
		name := users[u.Nkey]
		p := u.Permissions
		if name == "admin" {
			if p != nil {
				t.Errorf("admin has permissions %+v; it is the one user allowed everything", p)
			}
			continue
		}
		if p == nil || p.Publish == nil || p.Subscribe == nil {
			t.Errorf("user %s: publish and subscribe must both be limited, got %+v", name, p)
			continue
		}
		if !slices.Contains(p.Subscribe.Allow, "_INBOX_"+name+".>") || slices.Contains(p.Subscribe.Allow, "_INBOX.>") {
			t.Errorf("user %s subscribes to %v; want its own inboxes _INBOX_%s.> and not everyone's", name, p.Subscribe.Allow, name)
		}
		for _, s := range append(p.Publish.Allow, p.Subscribe.Allow...) {
			if s == ">" || s == "$JS.API.>" || strings.HasPrefix(s, "$JS.API.STREAM.DELETE") || strings.HasPrefix(s, "$JS.API.STREAM.PURGE") {
				t.Errorf("user %s may %q", name, s)
			}
		}
	}
}
