// Package stack assembles the whole fieldstream pipeline on one JetStream — the gateway
// (with the operator dashboard beside it), the simulated outside world, the consumer
// services wired to it, the polling backstop and a simulated ServiceTrade account sending
// webhooks — as the actors of a daemon.Process. The all-in-one binary (`make run`) and the
// end-to-end test harness assemble it the same way; the standalone binaries assemble one
// part each from the same packages.
package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/consumerd"
	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/assets"
	"github.com/fieldstream/fieldstream/services/assets/assetsys"
	"github.com/fieldstream/fieldstream/services/fsctl/dashboard"
	"github.com/fieldstream/fieldstream/services/gateway"
	"github.com/fieldstream/fieldstream/services/payroll"
	"github.com/fieldstream/fieldstream/services/payroll/paycom"
	"github.com/fieldstream/fieldstream/services/poller"
	"github.com/fieldstream/fieldstream/services/simulator"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/services/workorders"
	"github.com/fieldstream/fieldstream/services/workorders/wosystem"
)

// Consumers are the names of the consumer services, in start order.
var Consumers = []string{assets.Name, workorders.Name, payroll.Name}

// Tenant is the tenant a stack serves (its poller polls, its sender sends to).
type Tenant struct {
	Name   string
	Record tenant.Config
	// Create stores Record at assembly; KeepExisting then leaves a stored record as it is
	// (an operator's changes to the demo tenant survive restarts).
	Create, KeepExisting bool
}

// HookPath is the path of the tenant's ServiceTrade webhook endpoint.
func (t Tenant) HookPath() string {
	return "/hooks/" + t.Name + "/servicetrade/" + t.Record.ServiceTradeToken
}

// Options say what to assemble.
type Options struct {
	// Gateway is the gateway's settings; its HTTPAddr ("127.0.0.1:0" for any port) serves
	// the webhook endpoints.
	Gateway gateway.Settings
	// Dashboard serves the operator dashboard under /dashboard/ beside the gateway: on one
	// machine, on loopback, for operators only.
	Dashboard bool
	Tenant    Tenant
	// Simulators configure the simulated outside world, listening at SimAddrs.
	Simulators simulator.StackConfig
	SimAddrs   simulator.Addrs
	// Consumers names the consumer services to run (see Consumers), each with Consumer's
	// settings; Service builds others later.
	Consumers []string
	Consumer  consumer.Config
	// PollEvery runs the polling backstop for the tenant against the simulated API (0:
	// none).
	PollEvery time.Duration
	// SendRate makes the simulated account send the tenant's hook this many events per
	// second, in deliveries of up to SendMaxBatch (0: it sends nothing by itself).
	SendRate     float64
	SendMaxBatch int
}

// Stack is an assembled pipeline.
type Stack struct {
	Gateway *gateway.Gateway
	// BaseURL is the gateway's (http://127.0.0.1:port), HookURL the tenant's ServiceTrade
	// hook on it.
	BaseURL, HookURL string
	// Sims are the simulators, answering at SimURLs.
	Sims    *simulator.Stack
	SimURLs simulator.URLs
	// ServiceTrade is how a client reaches the simulated ServiceTrade API.
	ServiceTrade servicetrade.Config
	Employees    *payroll.KVEmployees
}

// Assemble builds what o asks for on p and adds its actors to p: the gateway first (streams,
// the tenants bucket and the tenant), then the simulators, the employee mapping, the
// poller, the consumers and the sender. setup bounds the assembly only.
func Assemble(setup context.Context, p *daemon.Process, o Options) (*Stack, error) {
	s := &Stack{}
	if err := s.startGateway(setup, p, o); err != nil {
		return nil, err
	}
	var err error
	if s.Sims, err = simulator.NewStack(o.Simulators); err != nil {
		return nil, err
	}
	servers, err := s.Sims.Listen(o.SimAddrs, nil)
	if err != nil {
		return nil, err
	}
	p.Go(servers.Serve)
	s.SimURLs = servers.URLs
	s.ServiceTrade = servicetrade.Config{BaseURL: s.SimURLs.ServiceTrade + "/api", ClientID: s.Sims.Config.ClientID, ClientSecret: s.Sims.Config.ClientSecret}
	if err := s.mapEmployees(setup, p.JetStream); err != nil {
		return nil, err
	}
	if o.PollEvery > 0 {
		if err := s.startPoller(setup, p, o.Tenant.Name, o.PollEvery); err != nil {
			return nil, err
		}
	}
	for _, name := range o.Consumers {
		svc, err := s.Service(name)
		if err != nil {
			return nil, err
		}
		if err := consumerd.Start(setup, p, svc, o.Consumer, s.ServiceTrade, ""); err != nil {
			return nil, err
		}
	}
	if o.SendRate > 0 {
		sender, err := stsim.NewSender(stsim.SenderConfig{URL: s.HookURL, EventsPerSecond: o.SendRate, MaxBatch: o.SendMaxBatch,
			Logger: p.Log.With().Str("component", "servicetrade-sim").Logger()}, s.Sims.Account)
		if err != nil {
			return nil, err
		}
		p.Go(sender.Run)
	}
	return s, nil
}

func (s *Stack) startGateway(setup context.Context, p *daemon.Process, o Options) error {
	kv, err := tenant.OpenBucket(setup, p.JetStream)
	if err != nil {
		return err
	}
	if err := putTenant(setup, kv, o.Tenant); err != nil {
		return err
	}
	o.Gateway.Config.Metrics = p.Metrics
	if s.Gateway, err = gateway.Open(setup, p.JetStream, o.Gateway, p.Log.With().Str("component", "gateway").Logger()); err != nil {
		return err
	}
	p.Defer(func() { _ = s.Gateway.Close() })
	h := http.Handler(s.Gateway)
	if o.Dashboard {
		dash, err := dashboard.New(p.JetStream, dashboard.Options{Logger: p.Log.With().Str("component", "dashboard").Logger()})
		if err != nil {
			return err
		}
		// The JetStream side (backlogs, streams, dead letters) on the same /metrics.
		if err := p.Metrics.Register(dash.Metrics(dashboard.MetricsOptions{})); err != nil {
			return err
		}
		p.Go(dash.Run) // the charts' last hour
		mux := http.NewServeMux()
		mux.Handle("/", s.Gateway)
		mux.Handle("/dashboard/", dash)
		h = mux
	}
	addr, err := p.Serve(o.Gateway.HTTPAddr, gateway.NewHTTPServer(o.Gateway.HTTPAddr, h))
	if err != nil {
		return err
	}
	s.BaseURL = "http://" + addr.String()
	s.HookURL = s.BaseURL + o.Tenant.HookPath()
	return nil
}

// putTenant stores t's record if t says so.
func putTenant(ctx context.Context, kv jetstream.KeyValue, t Tenant) error {
	if !t.Create {
		return nil
	}
	if t.KeepExisting {
		if _, err := kv.Get(ctx, t.Name); err == nil {
			return nil
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
	}
	return tenant.Put(ctx, kv, t.Name, t.Record)
}

// mapEmployees maps every simulated technician to its payroll employee code, as an
// operator would for real ones.
func (s *Stack) mapEmployees(ctx context.Context, js jetstream.JetStream) error {
	var err error
	if s.Employees, err = payroll.OpenEmployees(ctx, js); err != nil {
		return err
	}
	for user, code := range s.Sims.EECodes {
		if err := s.Employees.Put(ctx, user, code); err != nil {
			return err
		}
	}
	return nil
}

// startPoller runs the polling backstop for tenant against the simulated API: on a
// schedule, and on request (fieldstream.poller.<tenant>.run).
func (s *Stack) startPoller(setup context.Context, p *daemon.Process, tenant string, every time.Duration) error {
	log := p.Log.With().Str("component", "poller").Logger()
	st := s.ServiceTrade
	st.Logger = log
	var err error
	if st.OnGrant, err = servicetrade.GrantCounter(p.Metrics); err != nil {
		return err
	}
	src, err := servicetrade.NewShared(setup, p.JetStream, st)
	if err != nil {
		return err
	}
	pl, err := poller.New(setup, poller.Config{JetStream: p.JetStream, Tenant: tenant, Source: src, Logger: log})
	if err != nil {
		return err
	}
	p.Go(func(ctx context.Context) error { return pl.Run(ctx, every) })
	p.Go(pl.Serve)
	return nil
}

// Service returns the consumer service named name wired to the simulators.
func (s *Stack) Service(name string) (consumerd.Service, error) {
	switch name {
	case assets.Name:
		return assets.Service(assetsys.Config{BaseURL: s.SimURLs.Assets}), nil
	case workorders.Name:
		return workorders.Service(wosystem.Config{BaseURL: s.SimURLs.WorkOrders}), nil
	case payroll.Name:
		return payroll.Service(paycom.Config{BaseURL: s.SimURLs.Paycom, SID: s.Sims.Config.PaycomSID, Token: s.Sims.Config.PaycomToken}, "UTC"), nil
	}
	return consumerd.Service{}, fmt.Errorf("no consumer service %q", name)
}
