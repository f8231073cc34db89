package test

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestDeployConfig checks that deploy/nats-server.conf is a valid server configuration and
// keeps the durability it promises.
func TestDeployConfig(t *testing.T) {
	opts, err := server.ProcessConfigFile("../deploy/nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !opts.JetStream || !opts.SyncAlways {
		t.Fatalf("JetStream %v, sync_interval always %v; want both", opts.JetStream, opts.SyncAlways)
	}
}
