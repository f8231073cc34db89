package test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/test/harness"
)

const (
	loadTenant = "acme"
	loadSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	loadToken  = "tok"
)

// TestClusterLeaderKill runs three nats-server processes as a JetStream cluster on
// loopback and the real gateway binary with every stream at three replicas, drives signed
// webhook load at a steady concurrency and SIGKILLs the EVENTS stream leader. Every event
// answered 2xx must be in EVENTS afterwards; while there is no leader the gateway answers 503
// with Retry-After (never another status, never no answer); ingest resumes once a new
// leader is elected; the killed node, started again, catches up. It logs the time to
// recover as one line: `cluster leader_kill recover_ms=… unavailable_ms=… …`.
func TestClusterLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster and the gateway as processes")
	}
	bins := buildBinaries(t)
	ctx := t.Context()
	dir := t.TempDir()
	cluster, err := harness.StartCluster(ctx, bins.NATSServer, dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Stop)
	_, js := natstest.ConnectURL(t, cluster.URLs())
	if _, err := ops.Setup(ctx, js, 3); err != nil { // as the admin does on a cluster
		t.Fatal(err)
	}
	putLoadTenant(t, js)
	checkReplicatedBuckets(t, js)

	gw := startGateway(t, bins.Gateway, cluster.URLs(), filepath.Join(dir, "gateway.log"), "-stream-replicas", "3", "-log-level", "warn")
	for _, s := range []string{"EVENTS", "DLQ"} {
		natstest.Eventually(t, 60*time.Second, s+" at three current replicas", func() bool {
			return harness.ReplicasCurrent(ctx, js, s, 3) == nil
		})
	}

	load := startLoad(t, gw.URL)
	natstest.Eventually(t, 60*time.Second, "200 requests answered 2xx before the fault", func() bool {
		return load.Count(Answer.OK) >= 200
	})

	leader := harness.StreamLeader(ctx, js, "EVENTS")
	victim, err := cluster.Node(leader)
	if err != nil {
		t.Fatalf("EVENTS leader %q: %v", leader, err)
	}
	var survivors []string
	for _, n := range cluster.Nodes {
		if n != victim {
			survivors = append(survivors, n.Name)
		}
	}
	killedAt := time.Now()
	victim.Kill()
	_, jsSurvivors := natstest.ConnectURL(t, cluster.URLs(survivors...))

	var newLeader string
	natstest.Eventually(t, 60*time.Second, "a new EVENTS leader after the kill", func() bool {
		newLeader = harness.StreamLeader(ctx, jsSurvivors, "EVENTS")
		return newLeader != "" && newLeader != victim.Name
	})
	electedAt := time.Now()
	natstest.Eventually(t, 60*time.Second, "100 requests sent after the election answered 2xx", func() bool {
		return load.Count(func(a Answer) bool { return a.OK() && a.Sent.After(electedAt) }) >= 100
	})
	answers := load.Stop()

	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 60*time.Second, "the restarted node caught up with EVENTS", func() bool {
		return harness.ReplicasCurrent(ctx, jsSurvivors, "EVENTS", 3) == nil
	})

	stored, err := harness.StoredIDs(ctx, jsSurvivors, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	ledger := harness.Reconcile(answers, stored)
	if !ledger.Balanced() {
		t.Errorf("ledger does not balance: %s\ngateway log:\n%s", ledger, gw.LogTail(3000))
	}
	if ledger.Refused == 0 {
		t.Errorf("no request was answered 503 while EVENTS had no leader: the fault was not observed (%s)", ledger)
	}
	unavailable, ok := unavailableFor(answers, killedAt)
	if !ok {
		t.Errorf("no 2xx after the first refusal")
	}
	p99, refusals := unavailableAnswerP99(answers, killedAt, electedAt)
	t.Logf("cluster leader_kill recover_ms=%d unavailable_ms=%d no_ack_gap_ms=%d unavailable_answer_p99_ms=%d unavailable_answers=%d acked=%d refused_503=%d lost=%d doubled=%d requests=%d killed=%s new_leader=%s",
		electedAt.Sub(killedAt).Milliseconds(), unavailable.Milliseconds(), longestGapBetweenAcks(answers, killedAt).Milliseconds(),
		p99.Milliseconds(), refusals, ledger.Acked, ledger.Refused, len(ledger.Lost), len(ledger.Doubled), ledger.Requests, victim.Name, newLeader)
}

// unavailableAnswerP99 returns the 99th percentile of how long the refusals (answers other
// than 2xx) of requests sent between from and to took, and how many there were: how fast a
// sender hears "retry later" while JetStream cannot store.
func unavailableAnswerP99(answers []Answer, from, to time.Time) (time.Duration, int) {
	var took []time.Duration
	for _, a := range answers {
		if !a.OK() && !a.Sent.Before(from) && a.Sent.Before(to) {
			took = append(took, a.Answered.Sub(a.Sent))
		}
	}
	if len(took) == 0 {
		return 0, 0
	}
	slices.Sort(took)
	return took[min(len(took)-1, len(took)*99/100)], len(took)
}

// longestGapBetweenAcks returns the longest time without any 2xx answer, counted from the
// last 2xx before from: how long ingest acknowledged nothing around a fault at from.
func longestGapBetweenAcks(answers []Answer, from time.Time) time.Duration {
	var acks []time.Time
	for _, a := range answers {
		if a.OK() {
			acks = append(acks, a.Answered)
		}
	}
	slices.SortFunc(acks, time.Time.Compare)
	var longest time.Duration
	for i := 1; i < len(acks); i++ {
		if acks[i].After(from) && acks[i].Sub(acks[i-1]) > longest {
			longest = acks[i].Sub(acks[i-1])
		}
	}
	return longest
}

// Answer is the harness's record of one answer; a short name for the conditions above.
type Answer = harness.Answer

// unavailableFor returns how long ingest was unavailable after a fault at from: from the
// first answer other than 2xx to the first 2xx answer to a request sent after it.
func unavailableFor(answers []Answer, from time.Time) (time.Duration, bool) {
	byAnswer := slices.Clone(answers)
	slices.SortFunc(byAnswer, func(a, b Answer) int { return a.Answered.Compare(b.Answered) })
	var firstRefusal time.Time
	for _, a := range byAnswer {
		if a.Answered.Before(from) {
			continue
		}
		if firstRefusal.IsZero() {
			if !a.OK() {
				firstRefusal = a.Answered
			}
			continue
		}
		if a.OK() && a.Sent.After(firstRefusal) {
			return a.Answered.Sub(firstRefusal), true
		}
	}
	return 0, false
}

// putLoadTenant creates the tenant harness.StartLoad sends for, with no effective rate limit.
func putLoadTenant(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	kv, err := tenant.OpenBucket(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tenant.Config{ServiceTradeToken: loadToken, StandardSecrets: []string{loadSecret}, RatePerSecond: 1e6, Burst: 1e6}
	if err := tenant.Put(ctx, kv, loadTenant, cfg); err != nil {
		t.Fatal(err)
	}
}

// checkReplicatedBuckets: on a cluster whose streams run at three replicas, the shared
// buckets fsctl setup made and a consumer's ledger run at three as well, so losing a node
// loses neither tenants nor what a consumer applied.
func checkReplicatedBuckets(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := t.Context()
	// Never run: only the ledger it opens matters here.
	if _, err := consumer.NewPipeline(ctx, js, consumer.Config{Name: "cluster-check", FilterSubjects: []string{"events.>"}, Logger: zerolog.Nop()},
		func(_ context.Context, b []*consumer.Message) []error { return make([]error, len(b)) }, consumer.PipelineOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, bucket := range []string{tenant.Bucket, servicetrade.TokenBucket, consumer.LedgerBucket("cluster-check")} {
		s, err := js.Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("bucket %s has %d replicas, want 3", bucket, r)
		}
	}
}

// startGateway starts the gateway binary against natsURLs, stopped by t.Cleanup.
func startGateway(t testing.TB, bin, natsURLs, logPath string, args ...string) *harness.Gateway {
	t.Helper()
	gw, err := harness.StartGateway(t.Context(), bin, natsURLs, logPath, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Stop)
	return gw
}

// startLoad starts steady signed webhook load for the load tenant against the gateway at
// url: eight senders, half of them ServiceTrade deliveries of five events. t.Cleanup stops it
// if the test did not.
func startLoad(t testing.TB, url string) *harness.Load {
	t.Helper()
	load, err := harness.StartLoad(harness.LoadConfig{URL: url, Tenant: loadTenant, Secret: loadSecret, Token: loadToken, Senders: 8, Batch: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { load.Stop() })
	return load
}
