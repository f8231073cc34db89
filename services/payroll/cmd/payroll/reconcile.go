package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/payroll"
	"github.com/fieldstream/fieldstream/services/payroll/paycom"
)

// reconcileProgram reports every punch on which ServiceTrade and payroll disagree in a
// window. It exits non-zero when there is any discrepancy, so it can gate a payroll run.
// NATS holds the employee mapping and the shared ServiceTrade token.
func reconcileProgram() daemon.Program {
	fs := flag.NewFlagSet("payroll reconcile", flag.ContinueOnError)
	var (
		since  = fs.Duration("since", 24*time.Hour, "start of the window, this long ago")
		until  = fs.Duration("until", 2*time.Minute, "end of the window, this long ago (changes still in flight are left out)")
		asJSON = fs.Bool("json", false, "print the report as JSON")
		st     servicetrade.Config
		pc     paycom.Config
		tz     string
	)
	st.RegisterFlags(fs, "http://127.0.0.1:9101/api")
	registerPaycom(fs, &pc, &tz)
	return daemon.Program{Name: "payroll-reconcile", Flags: fs, Wire: func(setup context.Context, p *daemon.Process) error {
		src, err := servicetrade.NewShared(setup, p.JetStream, st)
		if err != nil {
			return err
		}
		pay, err := paycom.New(pc)
		if err != nil {
			return err
		}
		emps, err := payroll.OpenEmployees(setup, p.JetStream)
		if err != nil {
			return err
		}
		p.Go(func(ctx context.Context) error {
			now := time.Now()
			r, err := payroll.Reconcile(ctx, src, pay, emps, now.Add(-*since), now.Add(-*until))
			if err != nil {
				return err
			}
			return report(p.Stdout, r, *asJSON)
		})
		return nil
	}}
}

// report prints r and fails when it holds discrepancies.
func report(w io.Writer, r payroll.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "window %s .. %s: %d punches expected from ServiceTrade, %d found in payroll, %d discrepancies\n",
			r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.Expected, r.Found, len(r.Discrepancies))
		for _, d := range r.Discrepancies {
			fmt.Fprintf(w, "  %-22s eecode=%s user=%d clockEvent=%d %s at %s\n", d.Kind, d.EECode, d.UserID, d.ClockEventID, d.PunchType,
				time.Unix(d.PunchTime, 0).UTC().Format(time.RFC3339))
		}
	}
	if len(r.Discrepancies) > 0 {
		return fmt.Errorf("%d discrepancies", len(r.Discrepancies))
	}
	return nil
}
