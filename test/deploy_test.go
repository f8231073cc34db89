package test

import (
	"os"
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

// TestComposeClusterConfig checks deploy/compose/nats-cluster.conf, the node configuration
// of `make cluster-up` and test/cluster: deploy/nats-server.conf's TLS and users with
// fsync before every ack, the three routes over verified TLS, and no container address
// advertised to clients.
func TestComposeClusterConfig(t *testing.T) {
	root := t.TempDir()
	secrets, err := harness.WriteSecrets(filepath.Join(root, "etc"), []string{"nats-1", "nats-2", "nats-3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range secrets.Env {
		name, pub, _ := strings.Cut(kv, "=")
		t.Setenv(name, pub)
	}
	t.Setenv("FS_NATS_NODE", "nats-2")
	// root/nats-server.conf, which the node configuration includes
	if _, err := harness.DeployConfig("../deploy/nats-server.conf", root, "127.0.0.1:4222", "127.0.0.1:8222"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../deploy/compose/nats-cluster.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.ReplaceAll(strings.ReplaceAll(string(b), "/etc/fieldstream/", filepath.Join(root, "etc")+"/"), "/data/", filepath.Join(root, "data")+"/")
	path := filepath.Join(root, "nats-cluster.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case opts.ServerName != "nats-2":
		t.Errorf("server_name %q, want the node's, nats-2", opts.ServerName)
	case !opts.JetStream || !opts.SyncAlways:
		t.Errorf("JetStream %v, sync_interval always %v; want both", opts.JetStream, opts.SyncAlways)
	case opts.TLSConfig == nil:
		t.Error("no client TLS")
	case len(opts.Nkeys) != len(harness.DeployUsers):
		t.Errorf("%d nkey users, want deploy/nats-server.conf's %d", len(opts.Nkeys), len(harness.DeployUsers))
	case opts.Cluster.Name != "fieldstream" || len(opts.Routes) != 3:
		t.Errorf("cluster %q with %d routes, want fieldstream with 3", opts.Cluster.Name, len(opts.Routes))
	case opts.Cluster.TLSConfig == nil:
		t.Error("routes without TLS")
	case !opts.Cluster.NoAdvertise:
		t.Error("the nodes advertise container addresses to clients")
	case opts.HTTPHost != "127.0.0.1":
		t.Errorf("monitoring on %q, want the container's loopback", opts.HTTPHost)
	}
}
