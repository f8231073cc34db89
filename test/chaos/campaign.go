// Package chaos runs fault campaigns against the real fieldstream binaries: nats-server
// (with sync_interval: always, the production setting), the gateway, the three consumer
// services and the simulators, each its own process on loopback. The simulated
// ServiceTrade account sends webhooks at a steady rate while the campaign kills (-9),
// stops (SIGSTOP/SIGCONT) and restarts processes and injects sink outages and 429 storms,
// cycle after cycle, chosen at random from a seed. Once the load has stopped and the
// consumers have settled, it balances a Ledger: every event answered 2xx must be applied
// exactly once at its sink or dead-lettered, and nothing may appear that was never sent.
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/services/payroll"
	"github.com/fieldstream/fieldstream/services/simulator"
	"github.com/fieldstream/fieldstream/services/simulator/fault"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/streams"
	"github.com/fieldstream/fieldstream/test/harness"
)

// Binaries a campaign runs, by file name in Config.BinDir.
var Binaries = []string{"nats-server", "gateway", "assets", "workorders", "payroll", "simulator", "poller"}

// The tenant the campaign's webhooks are for.
const (
	tenantName   = "chaos"
	tenantToken  = "chaos-hook-token"
	tenantSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	// pollOverlap is the poller's -overlap: how far before its checkpoint each walk starts.
	pollOverlap = 2 * time.Second
)

// Config configures Run; zero fields take the defaults in their comments.
type Config struct {
	// BinDir holds the Binaries. Required.
	BinDir string
	// NATSConfig is the production nats-server configuration (deploy/nats-server.conf) the
	// campaign runs, with its own certificates, nkeys, store and ports: TLS, and every
	// service as its own least-privileged user. Required.
	NATSConfig string
	// Dir is the campaign's working directory: JetStream's store, one log per process,
	// nats.conf. Required; Run does not remove it.
	Dir string
	// Cycles is the number of crash cycles: each kills or stops one process, and may also
	// take a sink down or rate-limit one. Default 5.
	Cycles int
	// Seed chooses the faults, their timing and the simulated account. Same seed, same
	// campaign (process scheduling aside).
	Seed int64
	// Rate is the webhook load in events per second. Default 20.
	Rate float64
	// MaxDown bounds how long a fault lasts. Default 3s.
	MaxDown time.Duration
	// SettleTimeout bounds the wait, once the load has stopped, for the consumers to
	// settle. Default 3m.
	SettleTimeout time.Duration
	// Progress, if set, receives a line per step.
	Progress func(line string)
}

func (c *Config) defaults() error {
	if c.BinDir == "" || c.Dir == "" || c.NATSConfig == "" {
		return errors.New("chaos: BinDir, Dir and NATSConfig are required")
	}
	if c.Cycles <= 0 {
		c.Cycles = 5
	}
	if c.Rate <= 0 {
		c.Rate = 20
	}
	if c.MaxDown <= 0 {
		c.MaxDown = 3 * time.Second
	}
	if c.SettleTimeout <= 0 {
		c.SettleTimeout = 3 * time.Minute
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	return nil
}

// campaign is one run: its processes and where they listen.
type campaign struct {
	cfg     Config
	rng     *rand.Rand
	procs   map[string]*process
	urls    map[string]string // health URL per process; simulator base URLs by sink
	js      jetstream.JetStream
	led     *Ledger
	secrets harness.Secrets
	natsURL string
}

// Run runs the campaign and returns its ledger, also written to Dir/ledger.json beside
// everything it was judged from (observations.json). An error
// means the campaign could not run (a binary missing, a process that would not start);
// a system that loses or doubles events is a ledger whose Verdict is FAIL.
func Run(ctx context.Context, cfg Config) (*Ledger, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	start := time.Now()
	c := &campaign{cfg: cfg, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0xc4a05)),
		procs: map[string]*process{}, urls: map[string]string{},
		led: &Ledger{Seed: cfg.Seed, Cycles: cfg.Cycles, FaultsByKind: map[string]int{}}}
	defer c.stopAll()
	if err := c.startAll(ctx); err != nil {
		return nil, err
	}
	if err := StartFeed(ctx, c.urls["servicetrade"]); err != nil {
		return nil, err
	}
	for i := 1; i <= cfg.Cycles; i++ {
		if err := c.cycle(ctx, i); err != nil {
			return nil, fmt.Errorf("cycle %d: %w", i, err)
		}
	}
	var obs Observations
	var err error
	if obs.SenderStats, err = StopFeed(ctx, c.urls["servicetrade"]); err != nil {
		return nil, err
	}
	cfg.Progress(fmt.Sprintf("load stopped after %s; settling", time.Since(start).Round(time.Second)))
	settleStart := time.Now()
	if err := Settle(ctx, c.js, c.cfg.SettleTimeout); err != nil {
		c.led.Imbalance = append(c.led.Imbalance, err.Error())
	}
	c.led.SettleSeconds = time.Since(settleStart).Seconds()
	if err := c.observe(ctx, &obs); err != nil {
		return nil, err
	}
	c.reconcile(ctx)
	for _, p := range c.procs {
		c.led.UnpromptedExits = append(c.led.UnpromptedExits, p.unprompted()...)
	}
	Judge(c.led, obs)
	c.led.DurationSeconds = time.Since(start).Seconds()
	if err := WriteJSON(filepath.Join(cfg.Dir, "observations.json"), obs); err != nil {
		return nil, err
	}
	return c.led, WriteJSON(filepath.Join(cfg.Dir, "ledger.json"), c.led)
}

// startAll starts nats-server with the production configuration, the simulators, the
// gateway, the consumers and the poller, in that order, each once the one before is
// healthy, each service connecting over TLS as its own NATS user.
func (c *campaign) startAll(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(c.cfg.Dir, "logs"), 0o755); err != nil {
		return err
	}
	addrs, err := freeAddrs(14)
	if err != nil {
		return err
	}
	port := func() string { a := addrs[0]; addrs = addrs[1:]; return a }
	natsAddr, natsMon := port(), port()
	if c.secrets, err = harness.WriteSecrets(filepath.Join(c.cfg.Dir, "etc"), nil); err != nil {
		return err
	}
	conf, err := harness.DeployConfig(c.cfg.NATSConfig, c.cfg.Dir, natsAddr, natsMon)
	if err != nil {
		return err
	}
	c.natsURL = "tls://" + natsAddr
	c.add("nats-server", "http://"+natsMon+"/healthz", "-c", conf)
	c.procs["nats-server"].env = c.secrets.Env
	if err := c.startHealthy(ctx, "nats-server"); err != nil {
		return err
	}
	admin, err := nats.NkeyOptionFromSeed(c.secrets.Seeds["admin"])
	if err != nil {
		return err
	}
	nc, err := nats.Connect(c.natsURL, admin, nats.RootCAs(c.secrets.CA), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	if c.js, err = jetstream.New(nc); err != nil {
		return err
	}
	if _, err := ops.Setup(ctx, c.js, 0); err != nil { // as the admin does: fsctl setup
		return err
	}
	kv, err := tenant.OpenBucket(ctx, c.js)
	if err != nil {
		return err
	}
	if err := tenant.Put(ctx, kv, tenantName, tenant.Config{ServiceTradeToken: tenantToken, StandardSecrets: []string{tenantSecret},
		RatePerSecond: 100000, Burst: 100000}); err != nil {
		return err
	}

	gw := port()
	sims := map[string]string{"servicetrade": port(), "assets": port(), "workorders": port(), "paycom": port()}
	for name, addr := range sims {
		c.urls[name] = "http://" + addr
	}
	c.add("simulator", c.urls["servicetrade"]+simulator.FeedPrefix+"account",
		"-servicetrade-addr", sims["servicetrade"], "-assets-addr", sims["assets"],
		"-workorders-addr", sims["workorders"], "-paycom-addr", sims["paycom"],
		"-hook-url", "http://"+gw+"/hooks/"+tenantName+"/servicetrade/"+tenantToken,
		"-rate", strconv.FormatFloat(c.cfg.Rate, 'f', -1, 64),
		// Standard Webhooks beside ServiceTrade: a quarter as many, half with Svix's names.
		"-standard-url", "http://"+gw+"/hooks/"+tenantName+"/standard", "-standard-secret", tenantSecret,
		"-standard-rate", strconv.FormatFloat(c.cfg.Rate/4, 'f', -1, 64), "-standard-headers", "both",
		"-account-seed", strconv.FormatInt(c.cfg.Seed, 10), "-feed-seed", strconv.FormatInt(c.cfg.Seed, 10),
		// Payroll imports an identical punch again, so a punch imported twice shows in the
		// ledger: fieldstream may not lean on a safeguard domain.md does not promise.
		"-paycom-import-identical")
	if err := c.startHealthy(ctx, "simulator"); err != nil {
		return err
	}
	if err := MapEmployees(ctx, c.js, c.urls["servicetrade"]); err != nil {
		return err
	}

	c.add("gateway", "http://"+gw+"/readyz", "-http-addr", gw, "-log-level", "warn", "-apply-streams=false")
	c.procs["gateway"].env = c.natsEnv("gateway")
	if err := c.startHealthy(ctx, "gateway"); err != nil {
		return err
	}
	st := []string{"-log-level", "warn", "-servicetrade-url", c.urls["servicetrade"] + "/api", "-servicetrade-client-secret", "dev-secret"}
	common := append(st,
		// Shorter than production so that a killed consumer's messages come back, and a
		// settled campaign is reached, within the run; MaxDeliver stays 10.
		"-ack-wait", "10s", "-nak-delay-max", "4s")
	sinks := map[string][]string{
		SinkAssets:     {"-registry-url", c.urls["assets"]},
		SinkWorkOrders: {"-workorders-url", c.urls["workorders"]},
		SinkPayroll:    c.paycomArgs(),
	}
	for _, name := range []string{SinkAssets, SinkWorkOrders, SinkPayroll} {
		metrics := port()
		c.add(name, "http://"+metrics+"/healthz", append(append([]string{"-metrics-addr", metrics}, common...), sinks[name]...)...)
		c.procs[name].env = c.natsEnv(name)
		if err := c.startHealthy(ctx, name); err != nil {
			return err
		}
	}
	// The polling backstop, walking often in small pages so that a kill lands mid-walk.
	debug := port()
	c.add("poller", "http://"+debug+"/debug/pprof/", append(slices.Clone(st), "-tenant", tenantName, "-interval", "2s",
		"-overlap", pollOverlap.String(), "-initial-lookback", "1h", "-page-size", "10", "-debug-addr", debug)...)
	c.procs["poller"].env = c.natsEnv("poller")
	return c.startHealthy(ctx, "poller")
}

// natsEnv is the environment of a service connecting as user, as deploy/ prescribes.
func (c *campaign) natsEnv(user string) []string {
	return []string{"FS_NATS_URL=" + c.natsURL, "FS_NATS_NKEY=" + c.secrets.Seeds[user], "FS_NATS_TLS_CA=" + c.secrets.CA,
		"FS_NATS_INBOX_PREFIX=_INBOX_" + user}
}

func (c *campaign) paycomArgs() []string {
	return []string{"-paycom-url", c.urls["paycom"], "-paycom-token", "dev-paycom-token"}
}

func (c *campaign) add(name, health string, args ...string) {
	c.procs[name] = &process{name: name, path: filepath.Join(c.cfg.BinDir, name), args: args,
		log: filepath.Join(c.cfg.Dir, "logs", name+".log")}
	c.urls["health:"+name] = health
}

func (c *campaign) startHealthy(ctx context.Context, name string) error {
	if err := c.procs[name].start(); err != nil {
		return err
	}
	return c.waitHealthy(ctx, name)
}

// waitHealthy polls the process's health URL until it answers 2xx.
func (c *campaign) waitHealthy(ctx context.Context, name string) error {
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if !c.procs[name].running() {
			return fmt.Errorf("%s exited while starting; see %s", name, c.procs[name].log)
		}
		if err = HTTPJSON(ctx, http.MethodGet, c.urls["health:"+name], nil, nil); err == nil {
			return nil
		}
		if err := Pause(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not healthy within 60 s: %w", name, err)
}

// MapEmployees maps the technicians of the simulated account whose ServiceTrade API (and
// feed admin) answers at serviceTradeURL to their payroll employee codes, as an operator
// would.
func MapEmployees(ctx context.Context, js jetstream.JetStream, serviceTradeURL string) error {
	var snap simulator.AccountSnapshot
	if err := HTTPJSON(ctx, http.MethodGet, serviceTradeURL+simulator.FeedPrefix+"account", nil, &snap); err != nil {
		return err
	}
	emps, err := payroll.OpenEmployees(ctx, js)
	if err != nil {
		return err
	}
	for user, code := range snap.EECodes {
		if err := emps.Put(ctx, user, code); err != nil {
			return err
		}
	}
	return nil
}

// The processes a crash cycle may kill or stop, and the sink faults it may add.
var (
	faultTargets = []string{"nats-server", "gateway", SinkAssets, SinkWorkOrders, SinkPayroll, "poller"}
	sinkFaults   = []struct {
		kind, sim string
		faults    fault.Faults
	}{
		{"outage:assets", "assets", fault.Faults{Outage: true}},
		{"outage:workorders", "workorders", fault.Faults{Outage: true}},
		{"outage:paycom", "paycom", fault.Faults{Outage: true}},
		{"429:servicetrade", "servicetrade", fault.Faults{RatePerSecond: 3}},
		{"429:assets", "assets", fault.Faults{RatePerSecond: 2}},
		{"429:workorders", "workorders", fault.Faults{RatePerSecond: 2}},
		{"429:paycom", "paycom", fault.Faults{RatePerSecond: 2}},
	}
)

// cycle injects one process fault (kill -9 then restart, or SIGSTOP then SIGCONT), a
// third of the time a second one on another process at once (say nats-server stopped while
// a consumer is killed), and half the time a sink fault beside them; heals them all; and
// waits until every process is healthy again, then lets the load run a moment.
func (c *campaign) cycle(ctx context.Context, i int) error {
	targets := []string{faultTargets[c.rng.IntN(len(faultTargets))]}
	if c.rng.IntN(3) == 0 {
		for {
			if t := faultTargets[c.rng.IntN(len(faultTargets))]; t != targets[0] {
				targets = append(targets, t)
				break
			}
		}
	}
	kills := make([]bool, len(targets))
	for j := range kills {
		kills[j] = c.rng.IntN(2) == 0
	}
	down := c.duration(200*time.Millisecond, c.cfg.MaxDown)
	line := fmt.Sprintf("cycle %d/%d:", i, c.cfg.Cycles)
	var sink string
	if c.rng.IntN(2) == 0 {
		sf := sinkFaults[c.rng.IntN(len(sinkFaults))]
		sink = c.urls[sf.sim] + fault.AdminPrefix + "faults"
		if err := HTTPJSON(ctx, http.MethodPut, sink, sf.faults, nil); err != nil {
			return err
		}
		c.count(sf.kind)
		line += " " + sf.kind
	}
	if len(targets) > 1 {
		c.count("double")
	}
	for j, target := range targets {
		p := c.procs[target]
		if kills[j] {
			if err := p.kill(syscall.SIGKILL); err != nil {
				return err
			}
			c.count("kill9:" + target)
			line += " kill -9 " + target
		} else {
			if err := p.pause(); err != nil {
				return err
			}
			c.count("stop:" + target)
			line += " SIGSTOP " + target
		}
	}
	if err := Pause(ctx, down); err != nil {
		return err
	}
	if len(targets) > 1 && targets[1] == "nats-server" { // NATS first: a service started without it exits
		targets[0], targets[1], kills[0], kills[1] = targets[1], targets[0], kills[1], kills[0]
	}
	for j, target := range targets {
		p := c.procs[target]
		if kills[j] {
			if err := p.start(); err != nil {
				return err
			}
		} else if err := p.resume(); err != nil {
			return err
		}
	}
	if sink != "" {
		if err := HTTPJSON(ctx, http.MethodPut, sink, fault.Faults{}, nil); err != nil {
			return err
		}
	}
	if err := c.healAll(ctx); err != nil {
		return err
	}
	c.cfg.Progress(fmt.Sprintf("%s for %s", line, down.Round(time.Millisecond)))
	return Pause(ctx, c.duration(500*time.Millisecond, 2*time.Second))
}

func (c *campaign) count(kind string) {
	c.led.Faults++
	c.led.FaultsByKind[kind]++
}

func (c *campaign) duration(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)))
}

// healAll restarts any process that exited without a fault (the ledger lists it) and
// waits for every process to be healthy.
func (c *campaign) healAll(ctx context.Context) error {
	for _, name := range append([]string{"nats-server", "simulator", "gateway"}, SinkAssets, SinkWorkOrders, SinkPayroll, "poller") {
		p := c.procs[name]
		if !p.running() {
			if err := p.start(); err != nil {
				return err
			}
		}
		if err := c.waitHealthy(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// Consumers are the consumer services a campaign runs, by durable name.
var Consumers = []string{SinkAssets, SinkWorkOrders, SinkPayroll}

// Settle waits, up to timeout, until no consumer of Consumers has anything pending
// (harness.Pending: not delivered, not acknowledged, or handed back for later) at two polls
// a second apart, with DLQ unchanged between them.
func Settle(ctx context.Context, js jetstream.JetStream, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	quiet := 0
	var lastDLQ uint64
	var state []string // each consumer's, as last read: what did not settle
	for time.Now().Before(deadline) {
		var pending uint64
		state = state[:0]
		for _, name := range Consumers {
			n, err := harness.Pending(ctx, js, name)
			if err != nil {
				pending++ // not reachable yet counts as not settled
				state = append(state, fmt.Sprintf("%s: %v", name, err))
			} else if n > 0 {
				state = append(state, fmt.Sprintf("%s: %d pending", name, n))
			}
			pending += n
		}
		dlq := uint64(0)
		if s, err := js.Stream(ctx, "DLQ"); err == nil {
			if info, err := s.Info(ctx); err == nil {
				dlq = info.State.LastSeq
			}
		}
		if pending == 0 && dlq == lastDLQ {
			quiet++
		} else {
			quiet = 0
		}
		lastDLQ = dlq
		if quiet >= 2 {
			return nil
		}
		if err := Pause(ctx, time.Second); err != nil {
			return err
		}
	}
	return fmt.Errorf("consumers did not settle within %s (%s)", timeout, strings.Join(state, "; "))
}

// observe gathers what the simulators and JetStream hold. The poller's checkpoints are read
// before EVENTS: a checkpoint moves only once its walk's events are stored, so every event
// a checkpoint read here vouches for is in EVENTS as read after.
func (c *campaign) observe(ctx context.Context, obs *Observations) error {
	obs.PollOverlap = pollOverlap
	sims := Sims{ServiceTrade: c.urls["servicetrade"], Assets: c.urls["assets"], WorkOrders: c.urls["workorders"], Paycom: c.urls["paycom"]}
	return Observe(ctx, c.js, tenantName, sims, obs)
}

// Sims are the base URLs (http://host:port) of the simulators a campaign reads.
type Sims struct{ ServiceTrade, Assets, WorkOrders, Paycom string }

// Observe gathers what the simulators at sims and JetStream hold, for tenant, into obs
// (all but SenderStats, which stopping the feed reports, and PollOverlap). The poller's
// checkpoints are read before EVENTS: a checkpoint moves only once its walk's events are
// stored, so every event a checkpoint read here vouches for is in EVENTS as read after.
func Observe(ctx context.Context, js jetstream.JetStream, tenant string, sims Sims, obs *Observations) error {
	obs.Tenant = tenant
	cps, err := js.KeyValue(ctx, streams.CheckpointsBucket)
	if err != nil {
		return fmt.Errorf("poller checkpoints: %w", err)
	}
	obs.Checkpoints = map[string]int64{}
	for _, kind := range []string{"job", "asset", "location", "clock"} {
		e, err := cps.Get(ctx, tenant+"."+kind)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poller checkpoint %s: %w", kind, err)
		}
		if obs.Checkpoints[kind], err = strconv.ParseInt(string(e.Value()), 10, 64); err != nil {
			return fmt.Errorf("poller checkpoint %s: %w", kind, err)
		}
	}
	st := sims.ServiceTrade + simulator.FeedPrefix
	for url, out := range map[string]any{
		st + "deliveries":                  &obs.Deliveries,
		st + "account":                     &obs.Account,
		sims.Assets + "/admin/applied":     &obs.Assets,
		sims.WorkOrders + "/admin/applied": &obs.WorkOrders,
		sims.Paycom + "/admin/applied":     &obs.Payroll,
	} {
		if err := HTTPJSON(ctx, http.MethodGet, url, nil, out); err != nil {
			return err
		}
	}
	// A node just restarted may not answer JetStream requests yet (no responders): the
	// streams are read again, whole, for up to a minute.
	err = retry(ctx, time.Minute, func() (err error) {
		obs.Stored, err = storedEvents(ctx, js)
		return err
	})
	if err != nil {
		return fmt.Errorf("reading EVENTS: %w", err)
	}
	err = retry(ctx, time.Minute, func() (err error) {
		obs.DeadLetters, obs.DeadLetterMsgs, err = deadLetters(ctx, js)
		return err
	})
	if err != nil {
		return fmt.Errorf("reading DLQ: %w", err)
	}
	return nil
}

// retry calls f until it returns nil or within has passed, a second between calls, and
// returns its last error.
func retry(ctx context.Context, within time.Duration, f func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		if perr := Pause(ctx, time.Second); perr != nil {
			return err
		}
	}
}

// reconcile runs `payroll reconcile` over the campaign's window as the payroll user, as an
// operator would before a payroll run, and records what it reports.
func (c *campaign) reconcile(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := append([]string{"reconcile", "-json", "-since", "2h", "-until", "0s", "-log-level", "warn",
		"-servicetrade-url", c.urls["servicetrade"] + "/api", "-servicetrade-client-secret", "dev-secret"}, c.paycomArgs()...)
	cmd := exec.CommandContext(ctx, filepath.Join(c.cfg.BinDir, "payroll"), args...)
	cmd.Env = append(os.Environ(), c.natsEnv("payroll")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var r struct {
		Expected, Found int
		Discrepancies   []json.RawMessage
	}
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		c.led.Imbalance = append(c.led.Imbalance, fmt.Sprintf("payroll reconcile did not report (%v): %s", err, bytes.TrimSpace(stderr.Bytes())))
		return
	}
	c.led.ReconcileExpected, c.led.ReconcileDiscrepancies = r.Expected, len(r.Discrepancies)
	for _, d := range r.Discrepancies {
		c.led.detail("payroll reconcile: %s", d)
	}
}

// stopAll ends every process with SIGTERM (consumers and gateway drain), nats-server last.
func (c *campaign) stopAll() {
	for _, name := range []string{"poller", SinkAssets, SinkWorkOrders, SinkPayroll, "gateway", "simulator", "nats-server"} {
		if p := c.procs[name]; p != nil {
			_ = p.kill(syscall.SIGTERM)
		}
	}
	if c.js != nil {
		c.js.Conn().Close()
	}
}

// freeAddrs returns n distinct loopback addresses whose ports were free a moment ago. They
// lie below the ephemeral range (32768 and up on Linux): a port the kernel hands to some
// outgoing connection meanwhile would stop a process from starting or restarting.
func freeAddrs(n int) ([]string, error) {
	var out []string
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n {
			return nil, errors.New("no free loopback ports between 20000 and 32000")
		}
		addr := "127.0.0.1:" + strconv.Itoa(20000+rand.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		held = append(held, ln)
		out = append(out, addr)
	}
	return out, nil
}

// StartFeed starts the simulated account's webhooks (the simulator's feed, whose admin
// answers beside the ServiceTrade API at serviceTradeURL).
func StartFeed(ctx context.Context, serviceTradeURL string) error {
	return HTTPJSON(ctx, http.MethodPost, serviceTradeURL+simulator.FeedPrefix+"start", nil, nil)
}

// StopFeed stops the feed, waiting for the deliveries in flight, and returns its
// ServiceTrade sender's counters.
func StopFeed(ctx context.Context, serviceTradeURL string) (servicetrade.Stats, error) {
	var st servicetrade.Stats
	err := HTTPJSON(ctx, http.MethodPost, serviceTradeURL+simulator.FeedPrefix+"stop", nil, &st)
	return st, err
}

// WriteJSON writes v as indented JSON to path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Pause waits d — how long a fault lasts, or between polls of a condition — or until ctx
// ends (its error).
func Pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
