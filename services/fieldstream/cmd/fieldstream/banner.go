package main

import (
	"fmt"
	"io"

	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/services/fieldstream/stack"
)

// printBanner tells a new user what runs where and how to look at it.
func printBanner(w io.Writer, p *daemon.Process, s *stack.Stack, o stack.Options) {
	where := "external NATS"
	if e := p.Embedded; e != nil {
		where = "embedded JetStream, store " + e.StoreDir
		if e.SyncAlways {
			where += "; fsync before every ack"
		} else {
			where += "; fsync every 2 min: fast, but a machine crash can lose the last events acknowledged, -sync-always to fsync before every ack"
		}
	}
	t := o.Tenant
	fmt.Fprintf(w, `
fieldstream is running
  NATS        %s  (%s)
  gateway     %s
    ServiceTrade webhooks   POST %s%s
    Standard Webhooks       POST %s/hooks/%s/standard   (secret: see README)
    health, metrics         %s/readyz  %s/metrics
  dashboard   %s/dashboard/
  simulated outside systems (fault injection: PUT <url>/admin/faults)
    ServiceTrade API        %s/api
    asset registry          %s
    work-order system       %s
    Paycom payroll          %s
`, p.NATSURL, where, s.BaseURL, s.BaseURL, t.HookPath(), s.BaseURL, t.Name, s.BaseURL, s.BaseURL, s.BaseURL,
		s.SimURLs.ServiceTrade, s.SimURLs.Assets, s.SimURLs.WorkOrders, s.SimURLs.Paycom)
	if o.SendRate > 0 {
		fmt.Fprintf(w, "  simulated ServiceTrade account: %g events/s to tenant %s\n", o.SendRate, t.Name)
	} else {
		fmt.Fprintln(w, "  simulated ServiceTrade account: off (-sim-rate 0)")
	}
	if len(o.Consumers) > 0 {
		fmt.Fprintln(w, "  consumers: assets, workorders, payroll (in this process)")
	} else {
		fmt.Fprintln(w, "  consumers: not started (-consumers=false); run bin/assets, bin/workorders, bin/payroll")
	}
	fmt.Fprintf(w, `
Look with fsctl (bin/fsctl status) or the nats CLI (make tools installs it):
  nats --server %s stream info EVENTS
  nats --server %s consumer report EVENTS
  nats --server %s stream view DLQ
Ctrl-C drains and exits.

`, p.NATSURL, p.NATSURL, p.NATSURL)
}
