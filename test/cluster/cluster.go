// Package cluster runs fieldstream's container images (make images) on a private Docker
// network with testcontainers-go — three NATS nodes configured by deploy/compose's
// nats-cluster.conf over deploy/nats-server.conf (TLS, one nkey user per service, sync
// always, R3), gateways, replicas of every consumer service, the polling backstop and the
// simulators, as deploy/compose wires them — and injects the faults of a real cluster: a
// node cut off the network, the stream leader killed, nodes restarted one by one, consumer
// replicas killed, paused and added. Campaign runs them under the simulators' webhook feed through every
// gateway and judges the run with the fault campaign's ledger (package chaos).
//
// The host reaches the containers only through ports published on 127.0.0.1: the nodes'
// client ports (the admin's connection), the gateways and the simulators.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/fieldstream/fieldstream/pkg/natsconn"
	"github.com/fieldstream/fieldstream/pkg/probe"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/test/chaos"
	"github.com/fieldstream/fieldstream/test/harness"
)

// The tenant the feed sends for, and its credentials.
const (
	Tenant         = "cluster"
	TenantToken    = "cluster-hook-token"
	TenantSecret   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	nodes          = 3
	gatewayPort    = "8080/tcp"
	natsClientPort = "4222/tcp"
)

// NodeNames are the NATS nodes' host names, which the dev certificate covers.
var NodeNames = []string{"nats-1", "nats-2", "nats-3"}

// Images are the images a cluster runs, by binary.
var Images = []string{"nats-server", "gateway", "assets", "workorders", "payroll", "simulator", "poller"}

// Config says what to run; zero fields take the defaults in their comments.
type Config struct {
	// Tag of the images fieldstream/<binary>:<Tag>. Required.
	Tag string
	// Dir holds the run's secrets and, once it is closed, every container's log in logs/.
	// Required.
	Dir string
	// Repo is the repository's root (deploy/ is read from it). Default: found from the
	// working directory upwards (the directory holding go.work).
	Repo string
	// Gateways is the number of gateways (default 2); Replicas the replicas of each
	// consumer service (default 2).
	Gateways, Replicas int
	// Consumers are the consumer services to run (default chaos.Consumers; an empty,
	// non-nil slice: none).
	Consumers []string
	// Rate and StandardRate are the feed's ServiceTrade and Standard Webhooks events per
	// second once started (defaults 16 and 4); Seed seeds the simulated account and the
	// feed.
	Rate, StandardRate float64
	Seed               int64
	// ConsumerEnv is added to every consumer replica's environment (FS_ACK_WAIT, say).
	ConsumerEnv map[string]string
	// NoPoller leaves the polling backstop out (it runs by default, walking the tenant's
	// account every 2 s with PollOverlap, as in the single-node campaign).
	NoPoller bool
	// Progress, if set, receives a line per step.
	Progress func(string)
}

func (c *Config) defaults() error {
	if c.Tag == "" || c.Dir == "" {
		return errors.New("cluster: Tag and Dir are required")
	}
	if c.Repo == "" {
		root, err := RepoRoot()
		if err != nil {
			return err
		}
		c.Repo = root
	}
	if c.Gateways <= 0 {
		c.Gateways = 2
	}
	if c.Replicas <= 0 {
		c.Replicas = 2
	}
	if c.Consumers == nil {
		c.Consumers = chaos.Consumers
	}
	if c.Rate <= 0 {
		c.Rate = 16
	}
	if c.StandardRate <= 0 {
		c.StandardRate = 4
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	return nil
}

// RepoRoot returns the nearest directory, from the working directory up, that holds
// go.work.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cluster: no go.work above the working directory")
		}
		dir = parent
	}
}

// Member is one container of the cluster.
type Member struct {
	// Name is its host name on the cluster's network (nats-2, gateway-1, workorders-3 …).
	Name string
	// Service is the binary it runs.
	Service string
	c       *testcontainers.DockerContainer
	ports   map[string]int // container port ("8080/tcp") → published port on 127.0.0.1
	ready   string         // readiness URL from the host; "" waits for the image's health check
}

// HostPort is the port on 127.0.0.1 that reaches the member's container port (8080/tcp).
func (m *Member) HostPort(port string) int { return m.ports[port] }

// Cluster is a running cluster. Its methods are not safe for concurrent use.
type Cluster struct {
	cfg     Config
	docker  *testcontainers.DockerClient
	net     *testcontainers.DockerNetwork
	secrets harness.Secrets
	run     string // label value of every container of this cluster

	Nodes     []*Member
	Gateways  []*Member
	Simulator *Member
	Poller    *Member // nil with Config.NoPoller
	// Replicas are the running replicas of each consumer service, by service.
	Replicas map[string][]*Member
	added    map[string]int // replicas ever started per service, for names
	removed  []*Member      // members taken out of the cluster, kept for their logs

	// JetStream is the admin's connection, through the nodes' published ports.
	JetStream jetstream.JetStream
	nc        *nats.Conn
	// Sims are the simulators' base URLs from the host; GatewayURLs the gateways'.
	Sims        chaos.Sims
	GatewayURLs []string
}

// Start starts a cluster as cfg says and returns it once every member is ready: the
// streams and shared buckets at three replicas (fsctl setup as the admin), the tenant, the
// employee map, the gateways and the consumer replicas. The feed is not started. On an
// error what was started is removed again.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, Replicas: map[string][]*Member{}, added: map[string]int{}, run: strconv.FormatInt(time.Now().UnixNano(), 36)}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.secrets, err = writeSecrets(filepath.Join(cfg.Dir, "secrets")); err != nil {
		return nil, err
	}
	if c.docker, err = testcontainers.NewDockerClientWithOpts(ctx); err != nil {
		return nil, err
	}
	if c.net, err = network.New(ctx, network.WithLabels(map[string]string{"fieldstream.test": c.run})); err != nil {
		return nil, fmt.Errorf("docker network: %w", err)
	}
	cfg.Progress("network " + c.net.Name)

	var wg sync.WaitGroup
	errs := make([]error, nodes)
	c.Nodes = make([]*Member, nodes)
	for i, name := range NodeNames { // together: a node is healthy only once the cluster has a quorum
		wg.Go(func() { c.Nodes[i], errs[i] = c.startNode(ctx, name) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := c.connectAdmin(); err != nil {
		return nil, err
	}
	if _, err := ops.Setup(ctx, c.JetStream, nodes); err != nil {
		return nil, fmt.Errorf("fsctl setup --replicas 3: %w", err)
	}
	if err := ops.PutTenant(ctx, c.JetStream, Tenant, tenant.Config{ServiceTradeToken: TenantToken, StandardSecrets: []string{TenantSecret},
		RatePerSecond: 100000, Burst: 100000}); err != nil {
		return nil, err
	}
	cfg.Progress("nodes up, streams and buckets at R3")

	if c.Simulator, err = c.startSimulator(ctx); err != nil {
		return nil, err
	}
	if err := chaos.MapEmployees(ctx, c.JetStream, c.Sims.ServiceTrade); err != nil {
		return nil, err
	}
	for i := range cfg.Gateways {
		g, err := c.startGateway(ctx, fmt.Sprintf("gateway-%d", i+1))
		if err != nil {
			return nil, err
		}
		c.Gateways = append(c.Gateways, g)
		c.GatewayURLs = append(c.GatewayURLs, fmt.Sprintf("http://127.0.0.1:%d", g.HostPort(gatewayPort)))
	}
	for _, svc := range cfg.Consumers {
		if _, err := c.AddReplicas(ctx, svc, cfg.Replicas); err != nil {
			return nil, err
		}
	}
	if !cfg.NoPoller {
		if c.Poller, err = c.startPoller(ctx); err != nil {
			return nil, err
		}
	}
	cfg.Progress(fmt.Sprintf("%d gateways and %d replicas of %v ready", cfg.Gateways, cfg.Replicas, cfg.Consumers))
	return c, nil
}

// writeSecrets writes fresh dev secrets for the nodes' host names under dir, readable by
// the containers' user (65532): these are throwaway keys of one run.
func writeSecrets(dir string) (harness.Secrets, error) {
	s, err := harness.WriteSecrets(dir, NodeNames)
	if err != nil {
		return s, err
	}
	return s, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	})
}

// spec describes a member to start.
type spec struct {
	name, image string
	cmd         []string
	env         map[string]string
	binds       []string // host:container[:ro]
	ports       []string // container ports to publish on 127.0.0.1
	ready       string   // path of a readiness endpoint on ports[0], polled from the host
}

// start creates and starts a member and waits until it is ready.
func (c *Cluster) start(ctx context.Context, s spec) (*Member, error) {
	m := &Member{Name: s.name, Service: s.image, ports: map[string]int{}}
	bindings := mobynet.PortMap{}
	for _, p := range s.ports {
		hp, err := harness.FreePort()
		if err != nil {
			return nil, err
		}
		m.ports[p] = hp
		bindings[mobynet.MustParsePort(p)] = []mobynet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(hp)}}
	}
	strategy := wait.Strategy(wait.ForHealthCheck().WithStartupTimeout(2 * time.Minute))
	if s.ready != "" {
		m.ready = fmt.Sprintf("http://127.0.0.1:%d%s", m.ports[s.ports[0]], s.ready)
		strategy = waitReady(m.ready)
	}
	ctr, err := testcontainers.Run(ctx, "fieldstream/"+s.image+":"+c.cfg.Tag,
		network.WithNetwork([]string{s.name}, c.net),
		testcontainers.WithEnv(s.env),
		testcontainers.WithCmd(s.cmd...),
		testcontainers.WithExposedPorts(s.ports...),
		testcontainers.WithLabels(map[string]string{"fieldstream.test": c.run, "fieldstream.member": s.name}),
		testcontainers.WithConfigModifier(func(cfg *container.Config) {
			cfg.Hostname = s.name
			// The images check every 5 s; a test waits for health at once.
			cfg.Healthcheck = &container.HealthConfig{Interval: 500 * time.Millisecond, Timeout: 3 * time.Second, Retries: 3, StartPeriod: time.Minute}
		}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.Binds = append(hc.Binds, s.binds...)
			hc.PortBindings = bindings
		}),
		testcontainers.WithWaitStrategy(strategy))
	m.c = ctr
	if err != nil {
		if ctr != nil { // created, but not ready: keep its log, remove it
			c.discard(m)
		}
		return nil, fmt.Errorf("start %s: %w (log in %s)", s.name, err, c.logPath(m))
	}
	return m, nil
}

// waitReady is a wait strategy polling url from the host until it answers 2xx.
func waitReady(url string) wait.Strategy {
	return wait.ForNop(func(ctx context.Context, _ wait.StrategyTarget) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		for {
			if probe.Check(ctx, url) == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s not ready: %w", url, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
}

func (c *Cluster) repo(parts ...string) string { return filepath.Join(append([]string{c.cfg.Repo}, parts...)...) }

func (c *Cluster) startNode(ctx context.Context, name string) (*Member, error) {
	env := map[string]string{"FS_NATS_NODE": name}
	for _, kv := range c.secrets.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return c.start(ctx, spec{name: name, image: "nats-server", cmd: []string{"-c", "/etc/fieldstream/nats-cluster.conf"}, env: env,
		binds: []string{
			c.repo("deploy", "nats-server.conf") + ":/etc/fieldstream/nats-server.conf:ro",
			c.repo("deploy", "compose", "nats-cluster.conf") + ":/etc/fieldstream/nats-cluster.conf:ro",
			filepath.Join(c.secrets.Dir, "tls") + ":/etc/fieldstream/tls:ro",
		},
		ports: []string{natsClientPort}})
}

// connectAdmin connects as the admin user through every node's published port.
func (c *Cluster) connectAdmin() error {
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, fmt.Sprintf("tls://127.0.0.1:%d", n.HostPort(natsClientPort)))
	}
	nc, err := natsconn.Connect(natsconn.Options{URL: strings.Join(urls, ","), NKey: c.secrets.Seeds["admin"], TLSCA: c.secrets.CA},
		"cluster-test-admin", zerolog.Nop(), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(10*time.Second))
	if err != nil {
		return err
	}
	c.nc = nc
	c.JetStream, err = jetstream.New(nc)
	return err
}

// clientEnv is how a service of user reaches the cluster: TLS, its own nkey and inboxes.
func (c *Cluster) clientEnv(user string) (map[string]string, []string) {
	return map[string]string{
			"FS_NATS_URL":          "tls://nats-1:4222,tls://nats-2:4222,tls://nats-3:4222",
			"FS_NATS_TLS_CA":       "/etc/fieldstream/tls/ca.pem",
			"FS_NATS_NKEY":         "/etc/fieldstream/nkeys/" + user + ".nk",
			"FS_NATS_INBOX_PREFIX": "_INBOX_" + user,
			"FS_LOG_LEVEL":         "warn",
		}, []string{
			c.secrets.CA + ":/etc/fieldstream/tls/ca.pem:ro",
			c.secrets.Seeds[user] + ":/etc/fieldstream/nkeys/" + user + ".nk:ro",
		}
}

func (c *Cluster) startSimulator(ctx context.Context) (*Member, error) {
	var hooks, standard, ready []string
	for i := range c.cfg.Gateways {
		g := fmt.Sprintf("http://gateway-%d:8080", i+1)
		hooks = append(hooks, g+"/hooks/"+Tenant+"/servicetrade/"+TenantToken)
		standard = append(standard, g+"/hooks/"+Tenant+"/standard")
		ready = append(ready, g+"/readyz")
	}
	seed := strconv.FormatInt(c.cfg.Seed, 10)
	m, err := c.start(ctx, spec{name: "simulator", image: "simulator",
		env: map[string]string{
			"FS_SIM_HOOK_URL": strings.Join(hooks, ","), "FS_SIM_STANDARD_URL": strings.Join(standard, ","),
			"FS_SIM_STANDARD_SECRET": TenantSecret,
			"FS_SIM_RATE":            strconv.FormatFloat(c.cfg.Rate, 'f', -1, 64),
			"FS_SIM_STANDARD_RATE":   strconv.FormatFloat(c.cfg.StandardRate, 'f', -1, 64),
			"FS_SIM_ACCOUNT_SEED":    seed, "FS_SIM_FEED_SEED": seed,
			// Payroll imports an identical punch again, so a punch imported twice shows in
			// the ledger (as in the single-node campaign).
			"FS_SIM_PAYCOM_IMPORT_IDENTICAL": "true",
			"FS_LOG_LEVEL":                   "warn",
		},
		ports: []string{"9101/tcp", "9102/tcp", "9103/tcp", "9104/tcp"}, ready: "/admin/faults"})
	if err != nil {
		return nil, err
	}
	url := func(p string) string { return fmt.Sprintf("http://127.0.0.1:%d", m.HostPort(p)) }
	c.Sims = chaos.Sims{ServiceTrade: url("9101/tcp"), Assets: url("9102/tcp"), WorkOrders: url("9103/tcp"), Paycom: url("9104/tcp")}
	return m, nil
}

func (c *Cluster) startGateway(ctx context.Context, name string) (*Member, error) {
	env, binds := c.clientEnv("gateway")
	env["FS_APPLY_STREAMS"] = "false" // its user may not: fsctl setup did, as the admin
	return c.start(ctx, spec{name: name, image: "gateway", env: env, binds: binds, ports: []string{gatewayPort}, ready: "/readyz"})
}

// PollOverlap is the poller's -overlap in a cluster: how far before its checkpoint each walk
// starts (the ledger judges polls with it).
const PollOverlap = 2 * time.Second

// startPoller starts the polling backstop for Tenant, walking often in small pages so that
// a fault lands mid-walk.
func (c *Cluster) startPoller(ctx context.Context) (*Member, error) {
	env, binds := c.clientEnv("poller")
	for k, v := range map[string]string{"FS_SERVICETRADE_URL": "http://simulator:9101/api", "FS_SERVICETRADE_CLIENT_SECRET": "dev-secret",
		"FS_TENANT": Tenant, "FS_INTERVAL": "2s", "FS_OVERLAP": PollOverlap.String(), "FS_INITIAL_LOOKBACK": "1h", "FS_PAGE_SIZE": "10"} {
		env[k] = v
	}
	return c.start(ctx, spec{name: "poller", image: "poller", env: env, binds: binds})
}

// sinkEnv is where each consumer service writes: the simulators.
var sinkEnv = map[string]map[string]string{
	chaos.SinkAssets:     {"FS_REGISTRY_URL": "http://simulator:9102"},
	chaos.SinkWorkOrders: {"FS_WORKORDERS_URL": "http://simulator:9103"},
	chaos.SinkPayroll:    {"FS_PAYCOM_URL": "http://simulator:9104", "FS_PAYCOM_TOKEN": "dev-paycom-token"},
}

// AddReplica starts one more replica of consumer service svc and returns it once ready
// (its /readyz, checked by the image's health check: NATS connected, EVENTS answering).
// The others keep running: replicas share the durable.
func (c *Cluster) AddReplica(ctx context.Context, svc string) (*Member, error) {
	ms, err := c.AddReplicas(ctx, svc, 1)
	if err != nil {
		return nil, err
	}
	return ms[0], nil
}

// AddReplicas starts n more replicas of consumer service svc at once and returns them once
// all are ready. A service with no replica yet starts one first, alone: two replicas that
// create the service's R3 ledger at the same moment have been seen to both wait out their
// set-up deadline (see the note of issue 12), which is not what these tests are about.
func (c *Cluster) AddReplicas(ctx context.Context, svc string, n int) ([]*Member, error) {
	if len(c.Replicas[svc]) == 0 && n > 1 {
		first, err := c.AddReplicas(ctx, svc, 1)
		if err != nil {
			return nil, err
		}
		rest, err := c.AddReplicas(ctx, svc, n-1)
		return append(first, rest...), err
	}
	env, binds := c.clientEnv(svc)
	env["FS_SERVICETRADE_URL"] = "http://simulator:9101/api"
	env["FS_SERVICETRADE_CLIENT_SECRET"] = "dev-secret"
	for k, v := range sinkEnv[svc] {
		env[k] = v
	}
	for k, v := range c.cfg.ConsumerEnv {
		env[k] = v
	}
	ms, errs := make([]*Member, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		c.added[svc]++
		name := fmt.Sprintf("%s-%d", svc, c.added[svc])
		wg.Go(func() { ms[i], errs[i] = c.start(ctx, spec{name: name, image: svc, env: env, binds: binds}) })
	}
	wg.Wait()
	for _, m := range ms {
		if m != nil {
			c.Replicas[svc] = append(c.Replicas[svc], m)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ms, nil
}

// RemoveReplica stops replica m gracefully (SIGTERM: it hands back what it holds) and
// takes it out of the cluster.
func (c *Cluster) RemoveReplica(ctx context.Context, m *Member) error {
	timeout := 20 * time.Second
	if err := m.c.Stop(ctx, &timeout); err != nil {
		return err
	}
	rs := c.Replicas[m.Service]
	for i, r := range rs {
		if r == m {
			c.Replicas[m.Service] = append(rs[:i:i], rs[i+1:]...)
		}
	}
	c.removed = append(c.removed, m)
	return nil
}

// Node returns the NATS node named name.
func (c *Cluster) Node(name string) (*Member, error) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node %q", name)
}

// Kill kills m's process at once (SIGKILL), as a crash would.
func (c *Cluster) Kill(ctx context.Context, m *Member) error {
	_, err := c.docker.ContainerKill(ctx, m.c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"})
	return err
}

// Stop stops m gracefully (SIGTERM, then SIGKILL after timeout), as a rolling upgrade does.
func (c *Cluster) Stop(ctx context.Context, m *Member, timeout time.Duration) error {
	return m.c.Stop(ctx, &timeout)
}

// Restart starts a killed or stopped m again and waits until it is ready.
func (c *Cluster) Restart(ctx context.Context, m *Member) error { return m.c.Start(ctx) }

// Pause freezes every process of m (docker pause), as a stalled machine would; Unpause
// thaws them.
func (c *Cluster) Pause(ctx context.Context, m *Member) error {
	_, err := c.docker.ContainerPause(ctx, m.c.GetContainerID(), client.ContainerPauseOptions{})
	return err
}

// Unpause thaws m.
func (c *Cluster) Unpause(ctx context.Context, m *Member) error {
	_, err := c.docker.ContainerUnpause(ctx, m.c.GetContainerID(), client.ContainerUnpauseOptions{})
	return err
}

// Disconnect cuts m off the cluster's network (docker network disconnect): it runs on, but
// reaches and is reached by no one.
func (c *Cluster) Disconnect(ctx context.Context, m *Member) error {
	_, err := c.docker.NetworkDisconnect(ctx, c.net.ID, client.NetworkDisconnectOptions{Container: m.c.GetContainerID(), Force: true})
	return err
}

// Connect connects m to the cluster's network again, under its host name.
func (c *Cluster) Connect(ctx context.Context, m *Member) error {
	_, err := c.docker.NetworkConnect(ctx, c.net.ID, client.NetworkConnectOptions{Container: m.c.GetContainerID(),
		EndpointConfig: &mobynet.EndpointSettings{Aliases: []string{m.Name}}})
	return err
}

// Running reports whether m's container runs (paused counts as running).
func (c *Cluster) Running(ctx context.Context, m *Member) bool {
	st, err := m.c.State(ctx)
	return err == nil && st.Running
}

// WaitReady waits until m answers ready again: its readiness URL, or its image's health
// check.
func (c *Cluster) WaitReady(ctx context.Context, m *Member) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		if m.ready != "" {
			if probe.Check(ctx, m.ready) == nil {
				return nil
			}
		} else if st, err := m.c.State(ctx); err == nil && st.Running && !st.Paused && st.Health != nil && st.Health.Status == container.Healthy {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", m.Name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Members returns every member in the cluster now: nodes, simulator, gateways, replicas,
// poller.
func (c *Cluster) Members() []*Member {
	out := append([]*Member{}, c.Nodes...)
	if c.Simulator != nil {
		out = append(out, c.Simulator)
	}
	out = append(out, c.Gateways...)
	for _, svc := range c.cfg.Consumers {
		out = append(out, c.Replicas[svc]...)
	}
	if c.Poller != nil {
		out = append(out, c.Poller)
	}
	return out
}

// Close writes every container's log to Dir/logs/<member>.log and removes the containers
// and the network, also when ctx has ended. It may be called more than once.
func (c *Cluster) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c.nc != nil {
		c.nc.Close()
	}
	for _, m := range append(c.Members(), c.removed...) {
		if m != nil && m.c != nil {
			c.discard(m)
		}
	}
	c.Nodes, c.Gateways, c.Simulator, c.Poller, c.Replicas, c.removed = nil, nil, nil, nil, map[string][]*Member{}, nil
	if c.net != nil {
		_ = c.net.Remove(ctx)
		c.net = nil
	}
	if c.docker != nil {
		_ = c.docker.Close()
	}
}

func (c *Cluster) logPath(m *Member) string { return filepath.Join(c.cfg.Dir, "logs", m.Name+".log") }

// discard writes m's log to Dir/logs and removes its container.
func (c *Cluster) discard(m *Member) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	saveLog(ctx, m, c.logPath(m))
	_ = m.c.Terminate(ctx, testcontainers.StopTimeout(5*time.Second))
}

func saveLog(ctx context.Context, m *Member, path string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	rc, err := m.c.Logs(ctx)
	if err != nil {
		return
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, rc)
}
