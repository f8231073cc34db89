package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"github.com/fieldstream/fieldstream/test/chaos"
	"github.com/fieldstream/fieldstream/test/harness"
	"github.com/nats-io/nats.go/jetstream"
)

// Kinds of fault a campaign injects.
const (
	// FaultPartition cuts a NATS node off the network (docker network disconnect), then
	// connects it again.
	FaultPartition = "partition:nats"
	// FaultLeaderKill kills the container of EVENTS' leader (SIGKILL), then starts it.
	FaultLeaderKill = "kill9:leader"
	// FaultRollingRestart restarts the three nodes one by one (SIGTERM, start, caught up),
	// as a rolling upgrade does: three faults.
	FaultRollingRestart = "restart:nats"
	// FaultReplicaKill kills a consumer replica (SIGKILL), then starts it.
	FaultReplicaKill = "kill9:replica"
	// FaultReplicaPause freezes a consumer replica (docker pause), then thaws it.
	FaultReplicaPause = "pause:replica"
	// FaultScale adds a replica of a consumer service under load — or, when the service
	// already runs one more than it started with, takes that one away (SIGTERM).
	FaultScale = "scale:replica"
	// FaultGatewayKill kills a gateway (SIGKILL), then starts it; the feed's attempts go
	// to the other meanwhile.
	FaultGatewayKill = "kill9:gateway"
	// FaultPollerKill kills the polling backstop mid-walk (SIGKILL), then starts it.
	FaultPollerKill = "kill9:poller"
)

// AllFaults are the kinds a long campaign draws from; each comes up at least once.
var AllFaults = []string{FaultPartition, FaultLeaderKill, FaultRollingRestart, FaultReplicaKill, FaultReplicaPause, FaultScale, FaultGatewayKill, FaultPollerKill}

// CampaignConfig configures RunCampaign; zero fields take the defaults in their comments.
type CampaignConfig struct {
	Cluster Config
	// Faults is how many faults to inject at least (a rolling restart counts three).
	// Default 3.
	Faults int
	// Kinds are the kinds to draw from: each once, in a random order, then at random.
	// Default AllFaults.
	Kinds []string
	// Seed chooses the faults, their victims and timing, and seeds the simulators (it
	// overrides Cluster.Seed).
	Seed int64
	// MaxDown bounds how long a fault lasts. Default 4s.
	MaxDown time.Duration
	// SettleTimeout bounds the wait, once the load has stopped, for the consumers to
	// settle. Default 3m.
	SettleTimeout time.Duration
}

// Result is what a campaign found.
type Result struct {
	Ledger *chaos.Ledger
	// MaxUnavailable is the longest time no webhook delivery was answered 2xx while the
	// load ran.
	MaxUnavailable time.Duration
	// Dir holds ledger.json, observations.json and logs/.
	Dir string
}

// Line is the campaign's one-line summary.
func (r *Result) Line() string {
	l := r.Ledger
	return fmt.Sprintf("chaos_cluster faults=%d acked=%d applied=%d lost=%d dup_applied=%d order_violations=%d false_2xx=%d max_unavailable_ms=%d verdict=%s",
		l.Faults, l.Acked, l.Applied, l.Lost, l.DupApplied, l.Regressions, l.False2xx, r.MaxUnavailable.Milliseconds(), l.Verdict)
}

// campaign is one run over a cluster.
type campaign struct {
	cfg CampaignConfig
	c   *Cluster
	rng *rand.Rand
	led *chaos.Ledger
}

// RunCampaign starts a cluster, starts the feed through every gateway, injects the faults
// one after the other — each healed and the cluster ready again before the next — then
// stops the feed, waits for the consumers to settle and judges the run with the fault
// campaign's ledger (chaos.Judge): lost=0, dup_applied=0, unexpected=0 (older-over-newer
// writes at the sinks included), no 2xx for an event not stored. The cluster is removed
// before it returns, its logs kept in Cluster.Dir/logs. An error means the campaign could
// not run; a system that loses, doubles or reorders is a Result whose verdict is FAIL.
func RunCampaign(ctx context.Context, cfg CampaignConfig) (*Result, error) {
	if cfg.Faults <= 0 {
		cfg.Faults = 3
	}
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = AllFaults
	}
	if cfg.MaxDown <= 0 {
		cfg.MaxDown = 4 * time.Second
	}
	if cfg.SettleTimeout <= 0 {
		cfg.SettleTimeout = 3 * time.Minute
	}
	cfg.Cluster.Seed = cfg.Seed
	if cfg.Cluster.ConsumerEnv == nil {
		// As the single-node campaign: a killed replica's messages come back, and the run
		// settles, within the run; MaxDeliver stays 10.
		cfg.Cluster.ConsumerEnv = map[string]string{"FS_ACK_WAIT": "10s", "FS_NAK_DELAY_MAX": "4s"}
	}
	if err := cfg.Cluster.defaults(); err != nil {
		return nil, err
	}
	progress := cfg.Cluster.Progress
	start := time.Now()
	c, err := Start(ctx, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	k := &campaign{cfg: cfg, c: c, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0xc1a5)),
		led: &chaos.Ledger{Seed: cfg.Seed, FaultsByKind: map[string]int{}}}

	if err := chaos.StartFeed(ctx, c.Sims.ServiceTrade); err != nil {
		return nil, err
	}
	loadFrom := time.Now()
	if err := chaos.Pause(ctx, 3*time.Second); err != nil { // load before the first fault
		return nil, err
	}
	for i, kind := range k.plan() {
		if k.led.Faults >= cfg.Faults {
			break
		}
		line, err := k.inject(ctx, kind)
		if err != nil {
			return nil, fmt.Errorf("fault %d (%s): %w", i+1, kind, err)
		}
		progress(fmt.Sprintf("fault %d/%d: %s", k.led.Faults, cfg.Faults, line))
		if err := k.heal(ctx); err != nil {
			return nil, fmt.Errorf("after fault %d (%s): %w", i+1, kind, err)
		}
		if err := chaos.Pause(ctx, k.duration(time.Second, 2*time.Second)); err != nil {
			return nil, err
		}
	}
	obs := chaos.Observations{PollOverlap: PollOverlap}
	if obs.SenderStats, err = chaos.StopFeed(ctx, c.Sims.ServiceTrade); err != nil {
		return nil, err
	}
	loadTo := time.Now()
	progress(fmt.Sprintf("load stopped after %s; settling", loadTo.Sub(start).Round(time.Second)))
	settleStart := time.Now()
	if err := chaos.Settle(ctx, c.JetStream, cfg.SettleTimeout); err != nil {
		k.led.Imbalance = append(k.led.Imbalance, err.Error())
	}
	k.led.SettleSeconds = time.Since(settleStart).Seconds()
	if err := chaos.Observe(ctx, c.JetStream, Tenant, c.Sims, &obs); err != nil {
		return nil, err
	}
	chaos.Judge(k.led, obs)
	k.led.DurationSeconds = time.Since(start).Seconds()
	res := &Result{Ledger: k.led, MaxUnavailable: chaos.MaxUnavailable(obs.Deliveries, loadFrom, loadTo), Dir: cfg.Cluster.Dir}
	if err := chaos.WriteJSON(filepath.Join(cfg.Cluster.Dir, "observations.json"), obs); err != nil {
		return nil, err
	}
	return res, chaos.WriteJSON(filepath.Join(cfg.Cluster.Dir, "ledger.json"), k.led)
}

// plan returns the kinds to inject in order: each of Kinds once, shuffled, then at
// random, enough for Faults (a rolling restart counts three).
func (k *campaign) plan() []string {
	kinds := slices.Clone(k.cfg.Kinds)
	k.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	for len(kinds) < k.cfg.Faults {
		kinds = append(kinds, k.cfg.Kinds[k.rng.IntN(len(k.cfg.Kinds))])
	}
	return kinds
}

func (k *campaign) count(kind string) {
	k.led.Faults++
	k.led.FaultsByKind[kind]++
}

func (k *campaign) duration(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(k.rng.Int64N(int64(hi-lo)))
}

func (k *campaign) pick(ms []*Member) *Member { return ms[k.rng.IntN(len(ms))] }

// replica picks a running replica of a random consumer service.
func (k *campaign) replica() (*Member, error) {
	var all []*Member
	for _, svc := range k.c.cfg.Consumers {
		all = append(all, k.c.Replicas[svc]...)
	}
	if len(all) == 0 {
		return nil, errors.New("no consumer replica runs")
	}
	return k.pick(all), nil
}

// inject injects one fault of kind and heals it, and returns what it did.
func (k *campaign) inject(ctx context.Context, kind string) (string, error) {
	c := k.c
	down := k.duration(500*time.Millisecond, k.cfg.MaxDown)
	switch kind {
	case FaultPartition:
		n := k.pick(c.Nodes)
		if err := c.Disconnect(ctx, n); err != nil {
			return "", err
		}
		k.count(kind)
		if err := chaos.Pause(ctx, down); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s cut off the network for %s", n.Name, down.Round(time.Millisecond)), c.Connect(ctx, n)
	case FaultLeaderKill:
		leader, err := waitForLeader(ctx, c.JetStream, "EVENTS")
		if err != nil {
			return "", err
		}
		n, err := c.Node(leader)
		if err != nil {
			return "", fmt.Errorf("EVENTS leader %q: %w", leader, err)
		}
		if err := c.Kill(ctx, n); err != nil {
			return "", err
		}
		k.count(kind)
		if err := chaos.Pause(ctx, down); err != nil {
			return "", err
		}
		return fmt.Sprintf("kill -9 %s (EVENTS leader), down %s", n.Name, down.Round(time.Millisecond)), c.Restart(ctx, n)
	case FaultRollingRestart:
		for _, n := range c.Nodes {
			if err := c.Stop(ctx, n, 20*time.Second); err != nil {
				return "", err
			}
			k.count(kind)
			if err := c.Restart(ctx, n); err != nil {
				return "", err
			}
			if err := k.caughtUp(ctx); err != nil {
				return "", fmt.Errorf("after restarting %s: %w", n.Name, err)
			}
		}
		return "rolling restart of nats-1, nats-2, nats-3, each caught up before the next", nil
	case FaultReplicaKill:
		r, err := k.replica()
		if err != nil {
			return "", err
		}
		if err := c.Kill(ctx, r); err != nil {
			return "", err
		}
		k.count(kind)
		if err := chaos.Pause(ctx, down); err != nil {
			return "", err
		}
		return fmt.Sprintf("kill -9 %s, down %s", r.Name, down.Round(time.Millisecond)), c.Restart(ctx, r)
	case FaultReplicaPause:
		r, err := k.replica()
		if err != nil {
			return "", err
		}
		if err := c.Pause(ctx, r); err != nil {
			return "", err
		}
		k.count(kind)
		if err := chaos.Pause(ctx, down); err != nil {
			return "", err
		}
		return fmt.Sprintf("docker pause %s for %s", r.Name, down.Round(time.Millisecond)), c.Unpause(ctx, r)
	case FaultScale:
		svc := c.cfg.Consumers[k.rng.IntN(len(c.cfg.Consumers))]
		k.count(kind)
		if rs := c.Replicas[svc]; len(rs) > c.cfg.Replicas {
			last := rs[len(rs)-1]
			return fmt.Sprintf("scale in: %s stopped", last.Name), c.RemoveReplica(ctx, last)
		}
		r, err := c.AddReplica(ctx, svc)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("scale out: %s added under load", r.Name), nil
	case FaultGatewayKill:
		g := k.pick(c.Gateways)
		if err := c.Kill(ctx, g); err != nil {
			return "", err
		}
		k.count(kind)
		if err := chaos.Pause(ctx, down); err != nil {
			return "", err
		}
		return fmt.Sprintf("kill -9 %s, down %s", g.Name, down.Round(time.Millisecond)), c.Restart(ctx, g)
	case FaultPollerKill:
		if c.Poller == nil {
			return "", errors.New("no poller runs")
		}
		if err := c.Kill(ctx, c.Poller); err != nil {
			return "", err
		}
		k.count(kind)
		if err := chaos.Pause(ctx, down); err != nil {
			return "", err
		}
		return fmt.Sprintf("kill -9 poller, down %s", down.Round(time.Millisecond)), c.Restart(ctx, c.Poller)
	}
	return "", fmt.Errorf("unknown fault kind %q", kind)
}

// heal restarts any member that exited without a fault (the ledger lists it), waits for
// every member to be ready and the streams to be current on all three nodes.
func (k *campaign) heal(ctx context.Context) error {
	for _, m := range k.c.Members() {
		if !k.c.Running(ctx, m) {
			k.led.UnpromptedExits = append(k.led.UnpromptedExits, m.Name)
			if err := k.c.Restart(ctx, m); err != nil {
				return err
			}
		}
		if err := k.c.WaitReady(ctx, m); err != nil {
			return err
		}
	}
	return k.caughtUp(ctx)
}

// caughtUp waits until EVENTS and DLQ have three current replicas.
func (k *campaign) caughtUp(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for _, s := range []string{"EVENTS", "DLQ"} {
		for {
			err := harness.ReplicasCurrent(ctx, k.c.JetStream, s, nodes)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not current on three nodes: %w", s, err)
			}
			if err := chaos.Pause(ctx, 250*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitForLeader returns stream's leader, asking until one answers (a loaded machine, or an
// election under way after the previous fault) for at most 30 s.
func waitForLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if leader := harness.StreamLeader(ctx, js, stream); leader != "" {
			return leader, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s has no leader that answers: %w", stream, ctx.Err())
		case <-time.After(250 * time.Millisecond): // polling the cluster for a leader
		}
	}
}
