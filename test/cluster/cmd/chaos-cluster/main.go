// Command chaos-cluster runs the fault campaign of package cluster on fieldstream's images
// (make images) — a three-node JetStream cluster, two gateways, two replicas of each
// consumer service, the simulators feeding both gateways — and ends with one line:
//
//	chaos_cluster faults=… acked=… applied=… lost=… dup_applied=… order_violations=… false_2xx=… max_unavailable_ms=… verdict=PASS|FAIL
//
// It exits 1 on FAIL. `make chaos-cluster` runs it with -faults 30 after `make images`.
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
	"strings"
	"syscall"
	"time"

	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/test/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runMain(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errFail):
		os.Exit(1) // the line, already printed, says why
	case err != nil:
		fmt.Fprintln(os.Stderr, "chaos-cluster:", err)
		os.Exit(1)
	}
}

var errFail = errors.New("verdict FAIL")

func runMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // Ryuk's image cannot be pulled; the campaign cleans up itself
	}
	fs := flag.NewFlagSet("chaos-cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg cluster.CampaignConfig
	fs.StringVar(&cfg.Cluster.Tag, "tag", "latest", "tag of the fieldstream/<binary> images (make images prints it)")
	fs.StringVar(&cfg.Cluster.Dir, "dir", "", "working directory: secrets, logs/, ledger.json (default: a new one under the system's temp dir)")
	fs.IntVar(&cfg.Faults, "faults", 30, "faults to inject at least (a rolling restart counts three)")
	kinds := fs.String("kinds", strings.Join(cluster.AllFaults, ","), "kinds of fault, comma-separated")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the faults and the simulated account (0: from the clock, printed)")
	fs.DurationVar(&cfg.MaxDown, "max-down", 4*time.Second, "longest a fault lasts")
	fs.DurationVar(&cfg.SettleTimeout, "settle-timeout", 3*time.Minute, "longest wait for the consumers to settle once the load stops")
	fs.Float64Var(&cfg.Cluster.Rate, "rate", 16, "ServiceTrade webhook load, events per second")
	fs.Float64Var(&cfg.Cluster.StandardRate, "standard-rate", 4, "Standard Webhooks load, events per second")
	if err := envflag.Parse(fs, args, "FS_CHAOS", nil, getenv); err != nil {
		return err
	}
	cfg.Kinds = strings.Split(*kinds, ",")
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano() % 1_000_000_007
	}
	if cfg.Cluster.Dir == "" {
		dir, err := os.MkdirTemp("", "fieldstream-chaos-cluster-")
		if err != nil {
			return err
		}
		cfg.Cluster.Dir = dir
	}
	if err := cluster.DockerAvailable(ctx); err != nil {
		return fmt.Errorf("no Docker engine answers: %w", err)
	}
	fmt.Fprintf(stderr, "chaos-cluster: seed=%d faults=%d images=%s dir=%s\n", cfg.Seed, cfg.Faults, cfg.Cluster.Tag, cfg.Cluster.Dir)
	cfg.Cluster.Progress = func(line string) { fmt.Fprintf(stderr, "%s %s\n", time.Now().Format(time.TimeOnly), line) }
	res, err := cluster.RunCampaign(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, filepath.Join(cfg.Cluster.Dir, "logs"))
	}
	led := res.Ledger
	for _, d := range append(append(led.Details, led.Imbalance...), led.UnpromptedExits...) {
		fmt.Fprintln(stderr, "  "+d)
	}
	fmt.Fprintf(stderr, "ledger: %s, logs: %s (seed %d, %.0f s, faults %v)\n", filepath.Join(cfg.Cluster.Dir, "ledger.json"),
		filepath.Join(cfg.Cluster.Dir, "logs"), cfg.Seed, led.DurationSeconds, led.FaultsByKind)
	fmt.Fprintln(stdout, res.Line())
	if led.Verdict != "PASS" {
		return errFail
	}
	return nil
}
