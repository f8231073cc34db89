package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/jsm.go/natscontext"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/natsconn"
)

// connectionFlags are the nats CLI's connection flags, read from its environment variables.
type connectionFlags struct {
	Server   string `help:"NATS server URL(s)" env:"NATS_URL" default:"nats://127.0.0.1:4222"`
	Creds    string `help:"NATS credentials file" env:"NATS_CREDS" type:"existingfile"`
	User     string `help:"NATS username" env:"NATS_USER"`
	Password string `help:"NATS password" env:"NATS_PASSWORD"`
	NKey     string `name:"nkey" help:"file holding a NATS user's nkey seed" env:"NATS_NKEY" type:"existingfile"`
	Context  string `help:"nats CLI context to connect with (default: the selected one, if --server and NATS_URL are not set)" env:"NATS_CONTEXT"`
	TLSCert  string `name:"tlscert" help:"client TLS certificate" env:"NATS_CERT" type:"existingfile"`
	TLSKey   string `name:"tlskey" help:"client TLS key" env:"NATS_KEY" type:"existingfile"`
	TLSCA    string `name:"tlsca" help:"CA certificate to verify the server" env:"NATS_CA" type:"existingfile"`
}

// connect connects through natsconn as the flags say, or as a nats CLI context says: the
// one named, else the selected one unless a server is named — by --server (serverGiven) or
// NATS_URL (read here because the flag's value cannot tell it from the default) — as the
// nats CLI does. A context is read with the nats CLI's own code, so that every setting it
// can hold means what it means there.
func (f connectionFlags) connect(serverGiven bool, stderr io.Writer) (*nats.Conn, error) {
	name := f.Context
	if name == "" && !serverGiven && os.Getenv("NATS_URL") == "" {
		name = natscontext.SelectedContext()
	}
	o := natsconn.Options{URL: f.Server, User: f.User, Password: f.Password, Creds: f.Creds, NKey: f.NKey,
		TLSCA: f.TLSCA, TLSCert: f.TLSCert, TLSKey: f.TLSKey}
	opts := []nats.Option{nats.Timeout(5 * time.Second)}
	if name != "" {
		nctx, err := natscontext.New(name, true)
		if err != nil {
			return nil, fmt.Errorf("connect with nats context %q: %w", name, err)
		}
		copts, err := nctx.NATSOptions()
		if err != nil {
			return nil, fmt.Errorf("connect with nats context %q: %w", name, err)
		}
		o, opts = natsconn.Options{URL: nctx.ServerURL()}, append(copts, opts...)
	}
	// Errors the server reports later (a permission denied) go to stderr; disconnections
	// are no news to a command that fails at its request's deadline anyway.
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}).
		Level(zerolog.ErrorLevel)
	nc, err := natsconn.Connect(o, "fsctl", log, opts...)
	switch {
	case err == nil:
		return nc, nil
	case name != "":
		return nil, fmt.Errorf("connect with nats context %q: %w", name, err)
	case errors.As(err, new(*natsconn.ConnectError)):
		return nil, fmt.Errorf("%w (is it running? `make run` starts one)", err)
	}
	return nil, err
}

// serverGiven says whether the command line named a server with --server.
func serverGiven(k *kong.Context) bool {
	for _, p := range k.Path {
		if p.Flag != nil && p.Flag.Name == "server" {
			return true
		}
	}
	return false
}
