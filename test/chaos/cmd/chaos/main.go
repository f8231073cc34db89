// Command chaos runs a fault campaign against the real fieldstream binaries (see package
// chaos) and ends with one line:
//
//	chaos faults=… acked=… applied=… lost=… dup_applied=… unexpected=… dlq=… verdict=PASS|FAIL
//
// It exits 1 on FAIL. `make chaos` runs it with -cycles 50 after `make build`; see -h.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/test/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runMain(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case errors.Is(err, errFail):
		os.Exit(1) // the ledger line, already printed, says why
	case err != nil:
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

// errFail is a campaign that ran and found the system wanting.
var errFail = errors.New("verdict FAIL")

func runMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg chaos.Config
	fs.StringVar(&cfg.BinDir, "bin-dir", "bin", "directory with nats-server, gateway, assets, workorders, payroll, simulator, poller (make build)")
	fs.StringVar(&cfg.NATSConfig, "nats-config", "deploy/nats-server.conf", "the production nats-server configuration the campaign runs (TLS, one nkey user per service), with its own certificates, keys and ports")
	fs.StringVar(&cfg.Dir, "dir", "", "working directory: store, logs, ledger.json (default: a new one under the system's temp dir)")
	fs.IntVar(&cfg.Cycles, "cycles", 50, "crash cycles")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the faults and the simulated account (0: from the clock, printed)")
	fs.Float64Var(&cfg.Rate, "rate", 20, "webhook load, events per second")
	fs.DurationVar(&cfg.MaxDown, "max-down", 3*time.Second, "longest a fault lasts")
	fs.DurationVar(&cfg.SettleTimeout, "settle-timeout", 3*time.Minute, "longest wait for the consumers to settle once the load stops")
	if err := envflag.Parse(fs, args, "FS_CHAOS", nil, getenv); err != nil {
		return err
	}
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano() % 1_000_000_007
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "fieldstream-chaos-")
		if err != nil {
			return err
		}
		cfg.Dir = dir
	}
	for _, b := range chaos.Binaries {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, b)); err != nil {
			return fmt.Errorf("%w (run make build)", err)
		}
	}
	fmt.Fprintf(stderr, "chaos: seed=%d cycles=%d rate=%g dir=%s\n", cfg.Seed, cfg.Cycles, cfg.Rate, cfg.Dir)
	cfg.Progress = func(line string) { fmt.Fprintf(stderr, "%s %s\n", time.Now().Format(time.TimeOnly), line) }
	led, err := chaos.Run(ctx, cfg)
	if err != nil {
		return err
	}
	for _, d := range led.Details {
		fmt.Fprintln(stderr, "  "+d)
	}
	for _, d := range append(led.Imbalance, led.UnpromptedExits...) {
		fmt.Fprintln(stderr, "  "+d)
	}
	fmt.Fprintf(stderr, "ledger: %s (seed %d, %.0f s)\n", filepath.Join(cfg.Dir, "ledger.json"), cfg.Seed, led.DurationSeconds)
	fmt.Fprintln(stdout, led.Line())
	if led.Verdict != "PASS" {
		return errFail
	}
	return nil
}
