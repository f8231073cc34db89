// Package natstest starts embedded JetStream servers for tests: a fresh server with its own
// store per test, shut down by t.Cleanup.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/natsembed"
)

// RunServer starts a JetStream server on a free loopback port with its store in a fresh
// temporary directory.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return RunServerAt(t, -1, t.TempDir())
}

// RunServerAt starts a JetStream server on port (-1 for a free one) with its store in dir,
// so a test can stop a server and start it again with the same address and data.
func RunServerAt(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Config{Port: port, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect connects to s with reconnects that never give up, closed by t.Cleanup.
func Connect(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return ConnectURL(t, s.ClientURL())
}

// ConnectURL connects to the servers at url (comma-separated for a cluster, as NATS_URL)
// with reconnects that never give up, closed by t.Cleanup; for servers that run as
// processes of their own.
func ConnectURL(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Eventually polls cond every 10 ms until it is true, and fails the test if it is not
// within timeout. It is how tests wait for work, never time.Sleep.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
