package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/natsconn"
	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
	"github.com/fieldstream/fieldstream/services/payroll"
	"github.com/fieldstream/fieldstream/services/simulator"
	stsim "github.com/fieldstream/fieldstream/services/simulator/servicetrade"
	"github.com/fieldstream/fieldstream/test/harness"
)

// secureNATS is a nats-server process running deploy/nats-server.conf, with its paths,
// ports and users' keys replaced by fresh ones of the test.
type secureNATS struct {
	url     string
	secrets harness.Secrets
	bins    string // built binaries: nats-server and every service
}

// buildAll builds nats-server from the pinned module and every service binary into one
// directory, in one go build.
func buildAll(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + "/", "github.com/nats-io/nats-server/v2"}
	for _, c := range []string{"gateway/cmd/gateway", "assets/cmd/assets", "workorders/cmd/workorders", "payroll/cmd/payroll", "poller/cmd/poller", "fsctl/cmd/fsctl"} {
		args = append(args, "github.com/fieldstream/fieldstream/services/"+c)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

func startSecureNATS(t *testing.T) *secureNATS {
	t.Helper()
	root := t.TempDir()
	secrets, err := harness.WriteSecrets(filepath.Join(root, "etc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	httpPort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := harness.DeployConfig("../deploy/nats-server.conf", root, "127.0.0.1:"+strconv.Itoa(port), "127.0.0.1:"+strconv.Itoa(httpPort))
	if err != nil {
		t.Fatal(err)
	}
	s := &secureNATS{url: fmt.Sprintf("tls://127.0.0.1:%d", port), secrets: secrets, bins: buildAll(t)}
	admin, err := nats.NkeyOptionFromSeed(secrets.Seeds["admin"])
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(root, "nats-server.log")
	t.Cleanup(func() { // what the server said, denials included, when a test failed
		if b, err := os.ReadFile(logFile); err == nil && t.Failed() {
			t.Logf("nats-server log:\n%s", b)
		}
	})
	stop, err := harness.RunNATSProcess(context.Background(), filepath.Join(s.bins, "nats-server"), []string{"-c", conf, "-l", logFile},
		secrets.Env, s.url, admin, nats.RootCAs(secrets.CA))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s
}

// options are what a service started with FS_NATS_* from natsEnv(user) connects with.
func (s *secureNATS) options(user string) natsconn.Options {
	return natsconn.Options{URL: s.url, NKey: s.secrets.Seeds[user], TLSCA: s.secrets.CA, InboxPrefix: "_INBOX_" + user}
}

// natsEnv is the environment of a service binary connecting as user.
func (s *secureNATS) natsEnv(user string) []string {
	o := s.options(user)
	return []string{"FS_NATS_URL=" + o.URL, "FS_NATS_NKEY=" + o.NKey, "FS_NATS_TLS_CA=" + o.TLSCA, "FS_NATS_INBOX_PREFIX=" + o.InboxPrefix}
}

// dial connects as user; violations receives the errors the server reports asynchronously
// (permissions violations among them). The caller closes the connection.
func (s *secureNATS) dial(user string, violations chan<- error) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := natsconn.Connect(s.options(user), "security-test-"+user, zerolog.Nop(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case violations <- err:
			default:
			}
		}))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
	}
	return nc, js, err
}

// service is a fieldstream binary running as its own process.
type service struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATS_") && !strings.HasPrefix(kv, "FS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// start runs binary name with env until the test ends; then it interrupts it and fails the
// test if its log shows a permission the server denied.
func (s *secureNATS) start(t *testing.T, name string, env []string, args ...string) *service {
	t.Helper()
	svc := &service{name: name, cmd: exec.Command(filepath.Join(s.bins, name), args...), out: &lockedBuffer{}, done: make(chan error, 1)}
	svc.cmd.Env = cleanEnv(env...)
	svc.cmd.Stdout, svc.cmd.Stderr = svc.out, svc.out
	if err := svc.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { svc.done <- svc.cmd.Wait() }()
	t.Cleanup(func() {
		_ = svc.cmd.Process.Signal(os.Interrupt)
		select {
		case <-svc.done:
		case <-time.After(15 * time.Second):
			_ = svc.cmd.Process.Kill()
			t.Errorf("%s did not stop within 15 s", name)
		}
		noViolations(t, name, svc.out.String())
		if t.Failed() {
			log := svc.out.String()
			t.Logf("%s log (last 3000 bytes):\n%s", name, log[max(0, len(log)-3000):])
		}
	})
	return svc
}

func noViolations(t *testing.T, name, log string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		if strings.Contains(strings.ToLower(sc.Text()), "permissions violation") {
			t.Errorf("%s was denied something it needs: %s", name, sc.Text())
		}
	}
}

// TestSecureDeployment runs deploy/nats-server.conf — TLS, one nkey user per service — as
// a nats-server process and the real binaries against it: first the whole pipeline, then
// what each credential must not do, then clients that must not get in at all.
func TestSecureDeployment(t *testing.T) {
	s := startSecureNATS(t)
	t.Run("end to end", func(t *testing.T) { endToEnd(t, s) })
	if t.Failed() {
		return
	}
	t.Run("credentials refused", func(t *testing.T) { credentialsRefused(t, s) })
	t.Run("strangers refused", func(t *testing.T) { strangersRefused(t, s) })
}

// endToEnd sets the server up as the admin with `fsctl setup` and runs the real binaries,
// each as its own user, from ServiceTrade webhooks at the gateway to every sink, plus one
// poll. Every service does its whole job without a single permission denied.
func endToEnd(t *testing.T, s *secureNATS) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := s.runFsctl(ctx, "setup"); err != nil {
		t.Fatal(err)
	}
	nc, admin, err := s.dial("admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	kv, err := admin.KeyValue(ctx, tenant.Bucket)
	if err != nil {
		t.Fatalf("fsctl setup did not create the tenants bucket: %v", err)
	}
	if err := tenant.Put(ctx, kv, harness.Tenant, tenant.Config{ServiceTradeToken: "tok", RatePerSecond: 1e6, Burst: 1e6}); err != nil {
		t.Fatal(err)
	}
	stack, err := simulator.NewStack(simulator.StackConfig{Account: stsim.AccountConfig{Seed: 5, IDBase: 1<<53 + 1,
		Start: time.Now().Add(-time.Minute).Truncate(time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	servers, err := stack.Listen(simulator.AnyLoopback, nil)
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServing := context.WithCancel(context.Background())
	t.Cleanup(stopServing)
	go func() { _ = servers.Serve(serveCtx) }()
	urls := servers.URLs
	employees, err := payroll.OpenEmployees(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	for user, code := range stack.EECodes {
		if err := employees.Put(ctx, user, code); err != nil {
			t.Fatal(err)
		}
	}

	httpPort, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	gw := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	s.start(t, "gateway", append(s.natsEnv("gateway"), "FS_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(httpPort), "FS_APPLY_STREAMS=false"))
	st := []string{"FS_SERVICETRADE_URL=" + urls.ServiceTrade + "/api", "FS_SERVICETRADE_CLIENT_SECRET=" + stack.Config.ClientSecret,
		"FS_METRICS_ADDR=127.0.0.1:0", "FS_NAK_DELAY=20ms", "FS_NAK_DELAY_MAX=200ms"}
	s.start(t, "assets", append(append(s.natsEnv("assets"), st...), "FS_REGISTRY_URL="+urls.Assets))
	s.start(t, "workorders", append(append(s.natsEnv("workorders"), st...), "FS_WORKORDERS_URL="+urls.WorkOrders))
	s.start(t, "payroll", append(append(s.natsEnv("payroll"), st...), "FS_PAYCOM_URL="+urls.Paycom, "FS_PAYCOM_TOKEN="+stack.Config.PaycomToken))
	natstest.Eventually(t, 20*time.Second, "gateway ready", func() bool {
		r, err := http.Get(gw + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})

	sender, err := stsim.NewSender(stsim.SenderConfig{URL: gw + "/hooks/" + harness.Tenant + "/servicetrade/tok", RetryDelay: time.Millisecond,
		Attempts: 10, DuplicateRate: stsim.Never, ReorderRate: stsim.Never}, stack.Account)
	if err != nil {
		t.Fatal(err)
	}
	pe := &pipelineEnv{Env: &harness.Env{JS: admin, Stack: stack, Sender: sender}, t: t}
	pe.send(20)
	natstest.Eventually(t, 45*time.Second, "every consumer settled", pe.settled)
	if dl := pe.deadLetters(); len(dl) != 0 {
		t.Fatalf("%d dead letters, first %s: %s", len(dl), dl[0].Subject, dl[0].Header.Get("Fs-Dlq-Error"))
	}
	pe.checkConverged()
	if len(stack.Registry.Applied()) == 0 || len(stack.WorkOrders.Applied()) == 0 || len(stack.Payroll.Applied()) == 0 {
		t.Fatalf("applied: %d assets, %d work orders, %d payroll imports; want some of each",
			len(stack.Registry.Applied()), len(stack.WorkOrders.Applied()), len(stack.Payroll.Applied()))
	}

	// A forced replay to each service, as the admin: each finds its replay, runs it and
	// deletes it, as its own user.
	for _, name := range []string{"assets", "workorders", "payroll"} {
		out, err := s.runFsctl(ctx, "--json", "replay", "--consumer", name, "--from-seq", "1", "--force")
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Total, Replayed int
		}
		if err := json.Unmarshal(out, &res); err != nil || res.Total == 0 || res.Replayed != res.Total {
			t.Fatalf("fsctl replay --consumer %s: %s (%v)", name, out, err)
		}
	}
	natstest.Eventually(t, 10*time.Second, "each service deleted its replay", func() bool {
		st, err := ops.GetStatus(ctx, admin)
		return err == nil && len(st.Replays) == 0
	})
	// A dead letter (a job ServiceTrade never had), redriven: the work-order service reads
	// the redrive from DLQ, fails it again, and replaces the dead letter with a new one.
	unknown := stsim.NewDelivery([]stsim.Change{{Action: "updated", Timestamp: time.Now().Unix(), UserID: 1, Entity: stsim.Ref("job", 42)}}, time.Now())
	if r := sender.Deliver(ctx, unknown); !r.Delivered {
		t.Fatal("unknown-job delivery failed")
	}
	natstest.Eventually(t, 20*time.Second, "the unknown job dead-lettered", func() bool { return len(pe.deadLetters()) == 1 })
	first := pe.deadLetters()[0].Sequence
	if out, err := s.runFsctl(ctx, "dlq", "redrive", "--consumer", "workorders"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	natstest.Eventually(t, 20*time.Second, "the redriven dead letter replaced by a new one", func() bool {
		dl := pe.deadLetters()
		return len(dl) == 1 && dl[0].Sequence > first && strings.HasPrefix(dl[0].Subject, "dlq.workorders.")
	})

	// The poller, as its own user: one walk, its checkpoints, its events.
	poll := exec.CommandContext(ctx, filepath.Join(s.bins, "poller"), "-tenant", harness.Tenant, "-once", "-since", "10m")
	poll.Env = cleanEnv(append(s.natsEnv("poller"), st[:2]...)...)
	var pollOut, pollErr bytes.Buffer
	poll.Stdout, poll.Stderr = &pollOut, &pollErr
	if err := poll.Run(); err != nil {
		t.Fatalf("poller -once: %v\n%s", err, pollErr.String())
	}
	noViolations(t, "poller", pollErr.String())
	if _, err := admin.KeyValue(ctx, "fieldstream_poller"); err != nil {
		t.Fatalf("poller kept no checkpoints: %v", err)
	}
	var res map[string]any
	if err := json.Unmarshal(pollOut.Bytes(), &res); err != nil {
		t.Fatalf("poller -once printed %q: %v", pollOut.String(), err)
	}
}

// action is something a credential tries.
type action func(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error

// credentialsRefused: every service credential is refused what its service must not do,
// with the server's permissions violation naming the subject. It runs after endToEnd, so
// there are events, durables and ledgers to steal.
func credentialsRefused(t *testing.T, s *secureNATS) {
	ctx := context.Background()

	request := func(subj string) action {
		return func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			_, err := nc.RequestWithContext(ctx, subj, []byte(`{"seq":1}`))
			return err
		}
	}
	publish := func(subj string) action { // a JetStream publish: it fails unless the stream acknowledges it
		return func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			_, err := js.Publish(ctx, subj, []byte(`{}`))
			return err
		}
	}
	subscribe := func(subj string) action {
		return func(_ context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			sub, err := nc.SubscribeSync(subj)
			if err != nil {
				return err
			}
			_, err = sub.NextMsg(time.Second)
			return err
		}
	}
	pull := func(stream, durable string) action {
		return func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			c, err := js.Consumer(ctx, stream, durable) // binding needs CONSUMER.INFO
			if err != nil {
				return err
			}
			_, err = c.Next(jetstream.FetchMaxWait(time.Second))
			return err
		}
	}
	deleteStream := func(name string) action {
		return func(ctx context.Context, _ *nats.Conn, js jetstream.JetStream) error {
			return js.DeleteStream(ctx, name)
		}
	}
	purgeStream := func(name string) action {
		return func(ctx context.Context, nc *nats.Conn, _ jetstream.JetStream) error {
			_, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+name, nil)
			return err
		}
	}
	kvGet := func(bucket string) string { return "$JS.API.DIRECT.GET.KV_" + bucket + ".$KV." + bucket + ".applied.x" }
	const pub, sub = "Publish", "Subscription"
	tests := []struct {
		user, name string
		do         action
		kind, subj string // the violation the server must report
	}{
		{"gateway", "read an event", request("$JS.API.DIRECT.GET.EVENTS"), pub, "$JS.API.DIRECT.GET.EVENTS"},
		{"gateway", "subscribe to events", subscribe("events.>"), sub, "events.>"},
		{"gateway", "create a consumer on EVENTS", request("$JS.API.CONSUMER.CREATE.EVENTS.spy"), pub, "$JS.API.CONSUMER.CREATE.EVENTS.spy"},
		{"gateway", "pull a service's durable", pull("EVENTS", "assets"), pub, "$JS.API.CONSUMER.INFO.EVENTS.assets"},
		{"gateway", "delete EVENTS", deleteStream("EVENTS"), pub, "$JS.API.STREAM.DELETE.EVENTS"},
		{"gateway", "purge EVENTS", purgeStream("EVENTS"), pub, "$JS.API.STREAM.PURGE.EVENTS"},
		{"gateway", "publish a dead letter", publish("dlq.assets.acme.asset.1.updated"), pub, "dlq.assets.acme.asset.1.updated"},
		{"gateway", "publish a redrive", publish("redrive.assets.events.acme.asset.1.updated"), pub, "redrive.assets.events.acme.asset.1.updated"},
		{"gateway", "change a tenant", publish("$KV.fieldstream_tenants.acme"), pub, "$KV.fieldstream_tenants.acme"},
		{"gateway", "read the OAuth2 tokens", request("$JS.API.DIRECT.GET.KV_fieldstream_oauth_tokens.$KV.fieldstream_oauth_tokens.x"), pub, "$JS.API.DIRECT.GET.KV_fieldstream_oauth_tokens.$KV.fieldstream_oauth_tokens.x"},
		{"gateway", "read other users' replies", subscribe("_INBOX.>"), sub, "_INBOX.>"},
		{"assets", "pull workorders' durable", request("$JS.API.CONSUMER.MSG.NEXT.EVENTS.workorders"), pub, "$JS.API.CONSUMER.MSG.NEXT.EVENTS.workorders"},
		{"assets", "take over workorders' durable", request("$JS.API.CONSUMER.CREATE.EVENTS.workorders"), pub, "$JS.API.CONSUMER.CREATE.EVENTS.workorders"},
		{"assets", "pull a replay to workorders", request("$JS.API.CONSUMER.MSG.NEXT.EVENTS.workorders-replay-1"), pub, "$JS.API.CONSUMER.MSG.NEXT.EVENTS.workorders-replay-1"},
		{"assets", "delete a replay to workorders", request("$JS.API.CONSUMER.DELETE.EVENTS.workorders-replay-2"), pub, "$JS.API.CONSUMER.DELETE.EVENTS.workorders-replay-2"},
		{"assets", "create its own replay", request("$JS.API.CONSUMER.CREATE.EVENTS.assets-replay-1"), pub, "$JS.API.CONSUMER.CREATE.EVENTS.assets-replay-1"},
		{"assets", "replay in a slot past its own", request("$JS.API.CONSUMER.MSG.NEXT.EVENTS.assets-replay-5"), pub, "$JS.API.CONSUMER.MSG.NEXT.EVENTS.assets-replay-5"},
		{"assets", "pull workorders' redrives", request("$JS.API.CONSUMER.MSG.NEXT.DLQ.workorders-redrive"), pub, "$JS.API.CONSUMER.MSG.NEXT.DLQ.workorders-redrive"},
		{"assets", "redrive a dead letter", publish("redrive.assets.events.acme.asset.1.updated"), pub, "redrive.assets.events.acme.asset.1.updated"},
		{"assets", "take over workorders' advisories", request("$JS.API.CONSUMER.CREATE.ADVISORIES.max-deliveries-EVENTS-workorders"), pub, "$JS.API.CONSUMER.CREATE.ADVISORIES.max-deliveries-EVENTS-workorders"},
		{"assets", "ack for workorders", publish("$JS.ACK.EVENTS.workorders.1.1.1.1.1.0"), pub, "$JS.ACK.EVENTS.workorders.1.1.1.1.1.0"},
		{"assets", "read payroll's ledger", request(kvGet("fieldstream_ledger_payroll")), pub, kvGet("fieldstream_ledger_payroll")},
		{"assets", "write payroll's ledger", publish("$KV.fieldstream_ledger_payroll.applied.x"), pub, "$KV.fieldstream_ledger_payroll.applied.x"},
		{"assets", "delete payroll's ledger", deleteStream("KV_fieldstream_ledger_payroll"), pub, "$JS.API.STREAM.DELETE.KV_fieldstream_ledger_payroll"},
		{"assets", "dead-letter as payroll", publish("dlq.payroll.acme.time_entry.1.closed"), pub, "dlq.payroll.acme.time_entry.1.closed"},
		{"assets", "forge an event", publish("events.acme.asset.1.updated"), pub, "events.acme.asset.1.updated"},
		{"assets", "read tenants' secrets", request("$JS.API.DIRECT.GET.KV_fieldstream_tenants.$KV.fieldstream_tenants.acme"), pub, "$JS.API.DIRECT.GET.KV_fieldstream_tenants.$KV.fieldstream_tenants.acme"},
		{"assets", "purge DLQ", purgeStream("DLQ"), pub, "$JS.API.STREAM.PURGE.DLQ"},
		{"assets", "read the gateway's replies", subscribe("_INBOX_gateway.>"), sub, "_INBOX_gateway.>"},
		{"workorders", "pull assets' durable", request("$JS.API.CONSUMER.MSG.NEXT.EVENTS.assets"), pub, "$JS.API.CONSUMER.MSG.NEXT.EVENTS.assets"},
		{"workorders", "dead-letter as assets", publish("dlq.assets.acme.asset.1.updated"), pub, "dlq.assets.acme.asset.1.updated"},
		{"workorders", "read assets' ledger", request(kvGet("fieldstream_ledger_assets")), pub, kvGet("fieldstream_ledger_assets")},
		{"payroll", "pull workorders' durable", request("$JS.API.CONSUMER.MSG.NEXT.EVENTS.workorders"), pub, "$JS.API.CONSUMER.MSG.NEXT.EVENTS.workorders"},
		{"payroll", "change the employee mapping", publish("$KV.fieldstream_payroll_employees.1"), pub, "$KV.fieldstream_payroll_employees.1"},
		{"payroll", "delete EVENTS", deleteStream("EVENTS"), pub, "$JS.API.STREAM.DELETE.EVENTS"},
		{"poller", "pull assets' durable", request("$JS.API.CONSUMER.MSG.NEXT.EVENTS.assets"), pub, "$JS.API.CONSUMER.MSG.NEXT.EVENTS.assets"},
		{"poller", "publish a dead letter", publish("dlq.poller.x"), pub, "dlq.poller.x"},
		{"poller", "change a tenant", publish("$KV.fieldstream_tenants.acme"), pub, "$KV.fieldstream_tenants.acme"},
		{"poller", "read an event", request("$JS.API.DIRECT.GET.EVENTS"), pub, "$JS.API.DIRECT.GET.EVENTS"},
	}
	// Each attempt waits for its request to time out; they run side by side.
	results := make([]error, len(tests))
	var wg sync.WaitGroup
	for i, tt := range tests {
		wg.Go(func() {
			results[i] = refused(ctx, s, tt.user, tt.do, fmt.Sprintf("Permissions Violation for %s to %q", tt.kind, tt.subj))
		})
	}
	wg.Wait()
	for i, tt := range tests {
		t.Run(tt.user+"/"+tt.name, func(t *testing.T) {
			if results[i] != nil {
				t.Error(results[i])
			}
		})
	}
}

// refused connects as user, tries do, and returns nil only if do failed and the server
// reported the violation want.
func refused(ctx context.Context, s *secureNATS, user string, do action, want string) error {
	violations := make(chan error, 64)
	nc, js, err := s.dial(user, violations)
	if err != nil {
		return err
	}
	defer nc.Close()
	actx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := do(actx, nc, js); err == nil {
		return fmt.Errorf("%s was allowed", user)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-violations:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("no %q reported", want)
		}
	}
}

func (s *secureNATS) runFsctl(ctx context.Context, args ...string) ([]byte, error) {
	args = append([]string{"--server", s.url, "--nkey", s.secrets.Seeds["admin"], "--tlsca", s.secrets.CA}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(s.bins, "fsctl"), args...)
	cmd.Env = cleanEnv("HOME=" + os.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("fsctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// strangersRefused: the server speaks TLS only, a client that cannot verify it does not
// connect, and without a known nkey nobody gets in.
func strangersRefused(t *testing.T, s *secureNATS) {
	addr := strings.TrimPrefix(s.url, "tls://")

	t.Run("plaintext", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(conn)
		info, err := r.ReadString('\n')
		if err != nil || !strings.Contains(info, `"tls_required":true`) {
			t.Fatalf("INFO %q (%v): want tls_required", info, err)
		}
		if _, err := fmt.Fprintf(conn, "CONNECT {\"verbose\":false}\r\nPING\r\n"); err != nil {
			t.Fatal(err)
		}
		rest, _ := r.ReadString('\n') // the server closes a connection that does not start TLS
		if strings.Contains(rest, "PONG") {
			t.Fatalf("plaintext client answered: %q", rest)
		}
	})
	tests := []struct {
		name    string
		opts    []nats.Option
		wantErr string
	}{
		{"server not verified", []nats.Option{mustNKey(t, s.secrets.Seeds["admin"])}, "certificate signed by unknown authority"},
		{"no credentials", []nats.Option{nats.RootCAs(s.secrets.CA)}, "authorization violation"},
		{"unknown nkey", []nats.Option{nats.RootCAs(s.secrets.CA), mustNKey(t, strangerSeed(t))}, "authorization violation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(s.url, append(tt.opts, nats.Timeout(3*time.Second), nats.NoReconnect())...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(strings.ToLower(err.Error()), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func mustNKey(t *testing.T, seedFile string) nats.Option {
	t.Helper()
	o, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// strangerSeed writes the seed of a user the server does not know.
func strangerSeed(t *testing.T) string {
	t.Helper()
	other, err := harness.WriteSecrets(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return other.Seeds["gateway"]
}
