// Package harness assembles the whole fieldstream pipeline in one process on a given
// JetStream — the gateway, the simulated outside world and the three consumer services —
// with stack.Assemble, as `make run` does, for the end-to-end tests and the end-to-end
// benchmark.
package harness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/consumerd"
	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/fieldstream/stack"
	"github.com/fieldstream/fieldstream/services/gateway"
	"github.com/fieldstream/fieldstream/services/payroll"
	"github.com/fieldstream/fieldstream/services/simulator"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/streams"
)

// Tenant is the tenant the harness's gateway serves; its ServiceTrade hook token is "tok".
const Tenant = "acme"

// Consumers are the names of the consumer services, in start order.
var Consumers = stack.Consumers

// Env is a running pipeline. Close stops everything it started.
type Env struct {
	JS     jetstream.JetStream
	Hook   string // the tenant's ServiceTrade hook URL
	Sender *stsim.Sender
	// Stack is the simulators, answering at URLs.
	Stack        *simulator.Stack
	URLs         simulator.URLs
	Employees    *payroll.KVEmployees
	ServiceTrade servicetrade.Config
	assembled    *stack.Stack
	closers      []func()
}

// New assembles the gateway and the simulators on loopback and maps every simulated
// technician to a payroll employee code. Consumers start with StartConsumer. adjust, if
// given, change the gateway's configuration (its defaults: group commit on, as for a
// server that fsyncs every ack).
func New(ctx context.Context, js jetstream.JetStream, sc simulator.StackConfig, adjust ...func(*gateway.Config)) (*Env, error) {
	if sc.Account.Start.IsZero() {
		// The account is created with a history that predates fieldstream (never sent as
		// webhooks); a minute back keeps it apart from what the tests send. See HistoryEnd.
		sc.Account.Start = time.Now().Add(-time.Minute).Truncate(time.Second)
	}
	o := stack.Options{
		Gateway:    gateway.Settings{HTTPAddr: "127.0.0.1:0", ApplyStreams: true},
		Tenant:     stack.Tenant{Name: Tenant, Create: true, Record: tenant.Config{ServiceTradeToken: "tok", RatePerSecond: 1e6, Burst: 1e6}},
		Simulators: sc,
		SimAddrs:   simulator.AnyLoopback,
	}
	for _, a := range adjust {
		a(&o.Gateway.Config)
	}
	p, err := daemon.New("harness", js.Conn(), zerolog.Nop())
	if err != nil {
		return nil, err
	}
	s, err := stack.Assemble(ctx, p, o)
	if err != nil {
		p.Shutdown()
		return nil, err
	}
	e := &Env{JS: js, Hook: s.HookURL, Stack: s.Sims, URLs: s.SimURLs, Employees: s.Employees, ServiceTrade: s.ServiceTrade, assembled: s}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(runCtx, false) }()
	e.closers = append(e.closers, func() { stop(); <-done })
	e.Sender, err = stsim.NewSender(stsim.SenderConfig{URL: e.Hook, RetryDelay: time.Millisecond, Attempts: 10,
		DuplicateRate: stsim.Never, ReorderRate: stsim.Never}, s.Sims.Account)
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Service returns the consumer service named name wired to the simulators.
func (e *Env) Service(name string) (consumerd.Service, error) { return e.assembled.Service(name) }

// StartConsumer runs consumer service name, wired to the simulators, until Close; wrap,
// if set, wraps its handler (the benchmark times applications with it).
func (e *Env) StartConsumer(ctx context.Context, name string, cc consumer.Config, opts consumer.PipelineOptions, wrap consumer.Middleware) error {
	s, err := e.Service(name)
	if err != nil {
		return err
	}
	if wrap != nil {
		build := s.Build
		s.Build = func(ctx context.Context, d consumerd.Deps) (consumer.BatchHandler, error) {
			h, err := build(ctx, d)
			if err != nil {
				return nil, err
			}
			return wrap(h), nil
		}
	}
	p, err := consumerd.Pipeline(ctx, e.JS, s, cc, e.ServiceTrade, opts, zerolog.Nop())
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(rctx) }()
	e.closers = append(e.closers, func() { cancel(); <-done })
	return nil
}

// Send makes n deliveries of up to per account changes each and delivers them through the
// gateway, in order, then one more with the changes the account made but had not reported,
// so that ServiceTrade's API and its webhooks agree when Send returns.
func (e *Env) Send(ctx context.Context, n, per int) error {
	for i := range n + 1 {
		var changes []stsim.Change
		if i < n {
			changes = e.Stack.Account.NextChanges(per, time.Now())
		} else {
			changes = e.Stack.Account.PendingChanges()
		}
		if len(changes) == 0 {
			continue
		}
		// ServiceTrade counts any 2xx–4xx as delivered; the harness wants the events stored.
		if r := e.Sender.Deliver(ctx, stsim.NewDelivery(changes, time.Now())); !r.Delivered || r.Status/100 != 2 {
			return fmt.Errorf("delivery not stored: HTTP %d, %v", r.Status, r.Err)
		}
	}
	return nil
}

// HistoryEnd is when the simulated account's history ends: what it holds from before was
// never announced by webhooks (as for a real account that predates the integration), so a
// reconciliation that should balance starts here.
func (e *Env) HistoryEnd() time.Time {
	return e.Stack.Config.Account.Start.Add(time.Second)
}

// Pending returns what consumer name has not settled: messages not yet delivered, messages
// delivered and not acknowledged, and messages handed back (Nak) and waiting to be delivered
// again — which the first two counts miss, so the ack floor must also have caught up with
// the last delivery.
func (e *Env) Pending(ctx context.Context, name string) (uint64, error) {
	return Pending(ctx, e.JS, name)
}

// Pending is Env.Pending for consumer name of EVENTS on any JetStream, such as one whose
// consumers run as processes of their own.
func Pending(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	c, err := js.Consumer(ctx, streams.Events, name)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending) + (info.Delivered.Consumer - info.AckFloor.Consumer), nil
}

// Settled reports whether every named consumer has nothing pending.
func (e *Env) Settled(ctx context.Context, names ...string) bool {
	for _, n := range names {
		if p, err := e.Pending(ctx, n); err != nil || p != 0 {
			return false
		}
	}
	return true
}

// DeadLetters returns every message in DLQ.
func (e *Env) DeadLetters(ctx context.Context) ([]*jetstream.RawStreamMsg, error) {
	s, err := e.JS.Stream(ctx, streams.DeadLetters)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Close stops everything New and StartConsumer started, consumers first.
func (e *Env) Close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}
