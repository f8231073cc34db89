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
	connectionFlags
	JSON bool `help:"print JSON for scripts"`

	Setup     setupCmd     `cmd:"" help:"create or update the streams of streams/ and the shared KV buckets (run once per deployment, as the admin)"`
	Status    statusCmd    `cmd:"" help:"streams, consumers (pending, ack pending, redelivered, last activity, paused) and dead letters"`
	Replay    replayCmd    `cmd:"" help:"re-deliver a window of EVENTS to one consumer only"`
	DLQ       dlqCmd       `cmd:"" name:"dlq" help:"inspect, redrive and purge dead letters"`
	Consumer  consumerCmd  `cmd:"" help:"add, pause and resume consumers"`
	Dashboard dashboardCmd `cmd:"" help:"serve the live operations dashboard"`
	Tenant    tenantCmd    `cmd:"" help:"tenants' webhook credentials"`
	Employees employeesCmd `cmd:"" help:"payroll's map of ServiceTrade users to employee codes"`
}

// env is what every command's Run gets, besides the context.
type env struct {
	js     jetstream.JetStream
	json   bool
	stdout io.Writer
	stderr io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsctl:", oneLine(err))
		os.Exit(1)
	}
}

// run parses args, connects and runs the command. A usage error ends the process the way
// kong does (its message and the usage on stderr, exit status 80).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c cli
	parser, err := kong.New(&c, kong.Name("fsctl"), kong.UsageOnError(), kong.Writers(stdout, stderr),
		kong.Description("fieldstream operator tool. Connects like the nats CLI: --server/NATS_URL, --creds, TLS, --context."))
	if err != nil {
		return err
	}
	k, err := parser.Parse(args)
	parser.FatalIfErrorf(err)
	nc, err := c.connect(serverGiven(k), stderr)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	k.BindTo(ctx, (*context.Context)(nil))
	return k.Run(&env{js: js, json: c.JSON, stdout: stdout, stderr: stderr})
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
