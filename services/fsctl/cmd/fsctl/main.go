// Command fsctl is fieldstream's operator tool: backlog and dead letters at a glance,
// replays to one consumer, dead-letter redrive and purge, new and paused consumers. It
// connects the way the nats CLI does (--server or NATS_URL, --creds, TLS options, nats CLI
// contexts) and answers --json everywhere.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go/jetstream"
)

type cli struct {
	Server   string `help:"NATS server URL(s)" env:"NATS_URL" default:"nats://127.0.0.1:4222"`
	Creds    string `help:"NATS credentials file" env:"NATS_CREDS" type:"existingfile"`
	User     string `help:"NATS username" env:"NATS_USER"`
	Password string `help:"NATS password" env:"NATS_PASSWORD"`
	NKey     string `name:"nkey" help:"file holding a NATS user's nkey seed" env:"NATS_NKEY" type:"existingfile"`
	Context  string `help:"nats CLI context to connect with (default: the selected one, if --server and NATS_URL are not set)" env:"NATS_CONTEXT"`
	TLSCert  string `name:"tlscert" help:"client TLS certificate" env:"NATS_CERT" type:"existingfile"`
	TLSKey   string `name:"tlskey" help:"client TLS key" env:"NATS_KEY" type:"existingfile"`
	TLSCA    string `name:"tlsca" help:"CA certificate to verify the server" env:"NATS_CA" type:"existingfile"`
	JSON     bool   `help:"print JSON for scripts"`

	Setup     setupCmd     `cmd:"" help:"create or update the streams of streams/ and the shared KV buckets (run once per deployment, as the admin)"`
	Status    statusCmd    `cmd:"" help:"streams, consumers (pending, ack pending, redelivered, last activity, paused) and dead letters"`
	Replay    replayCmd    `cmd:"" help:"re-deliver a window of EVENTS to one consumer only"`
	DLQ       dlqCmd       `cmd:"" name:"dlq" help:"inspect, redrive and purge dead letters"`
	Consumer  consumerCmd  `cmd:"" help:"add, pause and resume consumers"`
	Dashboard dashboardCmd `cmd:"" help:"serve the live operations dashboard"`
}

type env struct {
	js     jetstream.JetStream
	json   bool
	stdout io.Writer
	stderr io.Writer
}

func main() {
	var c cli
	k := kong.Parse(&c, kong.Name("fsctl"), kong.UsageOnError(),
		kong.Description("fieldstream operator tool. Connects like the nats CLI: --server/NATS_URL, --creds, TLS, --context."))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, err := connect(c, os.Getenv)
	if err == nil {
		defer nc.Close()
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			k.BindTo(ctx, (*context.Context)(nil))
			err = k.Run(&env{js: js, json: c.JSON, stdout: os.Stdout, stderr: os.Stderr})
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsctl:", oneLine(err))
		os.Exit(1)
	}
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
