// Command payroll imports closed ServiceTrade clock events into Paycom-style payroll as
// clock-in/clock-out punches (durable "payroll"), and reconciles the two:
//
//	payroll [flags]                      consume time-entry events
//	payroll reconcile -since 24h [flags] report every punch that differs
//
// See -h for every setting.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumerd"
	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/pkg/natsconn"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/payroll"
	"github.com/fieldstream/fieldstream/services/payroll/paycom"
)

func main() {
	args := os.Args[1:]
	var err error
	if len(args) > 0 && args[0] == "reconcile" {
		err = reconcile(context.Background(), args[1:], os.Getenv, os.Stdout, os.Stderr)
	} else {
		fs := flag.NewFlagSet("payroll", flag.ContinueOnError)
		var f consumerd.Flags
		f.Register(fs, "127.0.0.1:9204")
		var pc paycom.Config
		var tz string
		registerPaycom(fs, &pc, &tz)
		err = consumerd.Main(context.Background(), func() consumerd.Service { return payroll.Service(pc, tz) }, fs, &f, args, os.Getenv, os.Stderr)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "payroll:", err)
		os.Exit(1)
	}
}

func registerPaycom(fs *flag.FlagSet, pc *paycom.Config, tz *string) {
	fs.StringVar(&pc.BaseURL, "paycom-url", "http://127.0.0.1:9104", "base URL of the payroll API")
	fs.StringVar(&pc.SID, "paycom-sid", "fieldstream", "payroll API SID (HTTP Basic user)")
	fs.StringVar(&pc.Token, "paycom-token", "", "payroll API token (prefer the environment variable)")
	fs.DurationVar(&pc.Timeout, "paycom-timeout", paycom.DefaultTimeout, "timeout of one payroll request")
	fs.StringVar(tz, "timezone", "UTC", "time zone of the punches, as payroll names it")
}

// reconcile reports every punch on which ServiceTrade and payroll disagree in a window.
// It exits non-zero when there is any discrepancy, so it can gate a payroll run.
func reconcile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("payroll reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		since  = fs.Duration("since", 24*time.Hour, "start of the window, this long ago")
		until  = fs.Duration("until", 2*time.Minute, "end of the window, this long ago (changes still in flight are left out)")
		asJSON = fs.Bool("json", false, "print the report as JSON")
		st     servicetrade.Config
		pc     paycom.Config
		tz     string
		nopt   natsconn.Options
	)
	nopt.RegisterFlags(fs, "nats://127.0.0.1:4222") // for the employee mapping and the shared token
	st.RegisterFlags(fs, "http://127.0.0.1:9101/api")
	registerPaycom(fs, &pc, &tz)
	if err := envflag.Parse(fs, args, "FS", natsconn.EnvFallbacks, getenv); err != nil {
		return err
	}
	nc, err := natsconn.Connect(nopt, "fieldstream-payroll-reconcile", zerolog.Nop())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	src, err := servicetrade.NewShared(ctx, js, st)
	if err != nil {
		return err
	}
	pay, err := paycom.New(pc)
	if err != nil {
		return err
	}
	emps, err := payroll.OpenEmployees(ctx, js)
	if err != nil {
		return err
	}
	now := time.Now()
	r, err := payroll.Reconcile(ctx, src, pay, emps, now.Add(-*since), now.Add(-*until))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "window %s .. %s: %d punches expected from ServiceTrade, %d found in payroll, %d discrepancies\n",
			r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.Expected, r.Found, len(r.Discrepancies))
		for _, d := range r.Discrepancies {
			fmt.Fprintf(stdout, "  %-22s eecode=%s user=%d clockEvent=%d %s at %s\n", d.Kind, d.EECode, d.UserID, d.ClockEventID, d.PunchType,
				time.Unix(d.PunchTime, 0).UTC().Format(time.RFC3339))
		}
	}
	if len(r.Discrepancies) > 0 {
		return fmt.Errorf("%d discrepancies", len(r.Discrepancies))
	}
	return nil
}
