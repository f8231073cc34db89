package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/consumerd"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/assets"
	"github.com/fieldstream/fieldstream/services/assets/assetsys"
	"github.com/fieldstream/fieldstream/services/payroll"
	"github.com/fieldstream/fieldstream/services/payroll/paycom"
	"github.com/fieldstream/fieldstream/services/poller"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/workorders"
	"github.com/fieldstream/fieldstream/services/workorders/wosystem"
)

// simAddrs are the listen addresses of the simulated outside systems.
type simAddrs struct {
	serviceTrade, assets, workOrders, paycom string
}

func (a *simAddrs) register(fs *flag.FlagSet) {
	fs.StringVar(&a.serviceTrade, "sim-servicetrade-addr", "127.0.0.1:9101", "simulated ServiceTrade API (under /api)")
	fs.StringVar(&a.assets, "sim-assets-addr", "127.0.0.1:9102", "simulated asset registry")
	fs.StringVar(&a.workOrders, "sim-workorders-addr", "127.0.0.1:9103", "simulated work-order system")
	fs.StringVar(&a.paycom, "sim-paycom-addr", "127.0.0.1:9104", "simulated Paycom payroll")
}

// serveStack serves each simulator on its address as an actor of g and returns their base
// URLs by name.
func serveStack(g *run.Group, stack *simulator.Stack, a simAddrs, log zerolog.Logger) (map[string]string, error) {
	addrs := map[string]string{"servicetrade": a.serviceTrade, "assets": a.assets, "workorders": a.workOrders, "paycom": a.paycom}
	urls := map[string]string{}
	for name, h := range stack.Handlers() {
		ln, err := net.Listen("tcp", addrs[name])
		if err != nil {
			return nil, fmt.Errorf("simulated %s: %w", name, err)
		}
		urls[name] = "http://" + dialable(ln.Addr())
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		g.Add(func() error { return srv.Serve(ln) }, func(error) { _ = srv.Close() })
		log.Debug().Str("simulator", name).Str("url", urls[name]).Msg("serving")
	}
	return urls, nil
}

// mapEmployees maps every simulated technician to its payroll employee code, as an
// operator would for real ones.
func mapEmployees(ctx context.Context, js jetstream.JetStream, stack *simulator.Stack) error {
	emps, err := payroll.OpenEmployees(ctx, js)
	if err != nil {
		return err
	}
	for user, code := range stack.EECodes {
		if err := emps.Put(ctx, user, code); err != nil {
			return err
		}
	}
	return nil
}

// addPoller runs the polling backstop for tenant demo against the simulated API as an actor
// of g: on a schedule, and on request (fieldstream.poller.demo.run).
func addPoller(ctx context.Context, g *run.Group, js jetstream.JetStream, stack *simulator.Stack, urls map[string]string, every time.Duration, log zerolog.Logger) error {
	src, err := servicetrade.NewShared(ctx, js, servicetrade.Config{BaseURL: urls["servicetrade"] + "/api", ClientID: stack.Config.ClientID,
		ClientSecret: stack.Config.ClientSecret, Logger: log})
	if err != nil {
		return err
	}
	p, err := poller.New(ctx, poller.Config{JetStream: js, Tenant: demoTenant, Source: src, Logger: log})
	if err != nil {
		return err
	}
	pctx, stop := context.WithCancel(context.Background())
	g.Add(func() error { return p.Run(pctx, every) }, func(error) { stop() })
	g.Add(func() error { return p.Serve(pctx) }, func(error) { stop() })
	return nil
}

// addConsumers runs the three consumer services against the simulators as actors of g.
func addConsumers(ctx context.Context, g *run.Group, js jetstream.JetStream, stack *simulator.Stack, urls map[string]string,
	cc consumer.Config, reg prometheus.Registerer, log zerolog.Logger) error {
	m, err := consumer.NewMetrics(reg)
	if err != nil {
		return err
	}
	st := servicetrade.Config{BaseURL: urls["servicetrade"] + "/api", ClientID: stack.Config.ClientID, ClientSecret: stack.Config.ClientSecret}
	services := []consumerd.Service{
		assets.Service(assetsys.Config{BaseURL: urls["assets"]}),
		workorders.Service(wosystem.Config{BaseURL: urls["workorders"]}),
		payroll.Service(paycom.Config{BaseURL: urls["paycom"], SID: stack.Config.PaycomSID, Token: stack.Config.PaycomToken}, "UTC"),
	}
	for _, s := range services {
		p, err := consumerd.Pipeline(ctx, js, s, cc, st, consumer.PipelineOptions{Metrics: m}, log.With().Str("component", s.Name).Logger())
		if err != nil {
			return err
		}
		pctx, stop := context.WithCancel(context.Background())
		g.Add(func() error { return p.Run(pctx) }, func(error) { stop() })
	}
	return nil
}

func printBanner(w io.Writer, natsURL, where, base string, simRate float64, sims map[string]string, consumers bool) {
	fmt.Fprintf(w, `
fieldstream is running
  NATS        %s  (%s)
  gateway     %s
    ServiceTrade webhooks   POST %s/hooks/%s/servicetrade/%s
    Standard Webhooks       POST %s/hooks/%s/standard   (secret: see README)
    health, metrics         %s/readyz  %s/metrics
  dashboard   %s/dashboard/
  simulated outside systems (fault injection: PUT <url>/admin/faults)
    ServiceTrade API        %s/api
    asset registry          %s
    work-order system       %s
    Paycom payroll          %s
`, natsURL, where, base, base, demoTenant, demoToken, base, demoTenant, base, base, base,
		sims["servicetrade"], sims["assets"], sims["workorders"], sims["paycom"])
	if simRate > 0 {
		fmt.Fprintf(w, "  simulated ServiceTrade account: %g events/s to tenant %s\n", simRate, demoTenant)
	} else {
		fmt.Fprintln(w, "  simulated ServiceTrade account: off (-sim-rate 0)")
	}
	if consumers {
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

`, natsURL, natsURL, natsURL)
}
