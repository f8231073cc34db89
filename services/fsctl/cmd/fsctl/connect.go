package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/jsm.go/natscontext"
	"github.com/nats-io/nats.go"
)

func connect(c cli, getenv func(string) string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("fsctl"), nats.Timeout(5 * time.Second)}
	name := c.Context
	if name == "" && getenv("NATS_URL") == "" && !serverGiven() {
		name = natscontext.SelectedContext()
	}
	if name != "" {
		nc, err := natscontext.Connect(name, opts...)
		if err != nil {
			return nil, fmt.Errorf("connect with nats context %q: %w", name, err)
		}
		return nc, nil
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.NKey != "" {
		opt, err := nats.NkeyOptionFromSeed(c.NKey)
		if err != nil {
			return nil, fmt.Errorf("--nkey %s: %w", c.NKey, err)
		}
		opts = append(opts, opt)
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	nc, err := nats.Connect(c.Server, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w (is it running? `make run` starts one)", c.Server, err)
	}
	return nc, nil
}

func serverGiven() bool {
	for _, a := range os.Args[1:] {
		if a == "--server" || strings.HasPrefix(a, "--server=") {
			return true
		}
	}
	return false
}
