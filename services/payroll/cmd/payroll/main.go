// Command payroll imports closed ServiceTrade clock events into Paycom-style payroll as
// clock-in/clock-out punches (durable "payroll"), and reconciles the two:
//
//	payroll [flags]                      consume time-entry events
//	payroll reconcile -since 24h [flags] report every punch that differs
//
// See -h for every setting.
package main

import (
	"flag"
	"os"

	"github.com/fieldstream/fieldstream/pkg/consumerd"
	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/services/payroll"
	"github.com/fieldstream/fieldstream/services/payroll/paycom"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "reconcile" {
		os.Args = os.Args[1:]
		daemon.Main(reconcileProgram())
		return
	}
	fs := flag.NewFlagSet("payroll", flag.ContinueOnError)
	var f consumerd.Flags
	f.Register(fs, "127.0.0.1:9204")
	var pc paycom.Config
	var tz string
	registerPaycom(fs, &pc, &tz)
	consumerd.Main(fs, &f, func() consumerd.Service { return payroll.Service(pc, tz) })
}

func registerPaycom(fs *flag.FlagSet, pc *paycom.Config, tz *string) {
	fs.StringVar(&pc.BaseURL, "paycom-url", "http://127.0.0.1:9104", "base URL of the payroll API")
	fs.StringVar(&pc.SID, "paycom-sid", "fieldstream", "payroll API SID (HTTP Basic user)")
	fs.StringVar(&pc.Token, "paycom-token", "", "payroll API token (prefer the environment variable)")
	fs.DurationVar(&pc.Timeout, "paycom-timeout", paycom.DefaultTimeout, "timeout of one payroll request")
	fs.StringVar(tz, "timezone", "UTC", "time zone of the punches, as payroll names it")
}
