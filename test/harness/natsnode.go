package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NodeConfig is one nats-server process: JetStream with sync_interval: always, as in
// deploy/nats-server.conf, so that an acknowledgement means the message was fsynced.
type NodeConfig struct {
	Name     string // server_name
	StoreDir string // JetStream store_dir
	// MaxFileStore is JetStream's max_file_store in bytes; 0 leaves the server's default
	// (75 % of the disk that is free when it starts).
	MaxFileStore int64
}

// Node is a nats-server process that can be killed and started again with the same
// address, configuration and store.
type Node struct {
	Name     string
	URL      string // client URL
	StoreDir string

	bin, conf, log string
	cmd            *exec.Cmd
	exited         chan struct{}
}

// newNode writes n's configuration to dir/<name>.conf (and its log to dir/<name>.log) with a
// free client port and, when routes is not empty, a cluster block listening on clusterPort.
func newNode(bin, dir string, c NodeConfig, clusterPort int, routes []string) (*Node, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %q\nlisten: \"127.0.0.1:%d\"\n", c.Name, port)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  sync_interval: always\n", c.StoreDir)
	if c.MaxFileStore > 0 {
		fmt.Fprintf(&b, "  max_file_store: %d\n", c.MaxFileStore)
	}
	b.WriteString("}\n")
	if len(routes) > 0 {
		fmt.Fprintf(&b, "cluster {\n  name: fieldstream\n  listen: \"127.0.0.1:%d\"\n  routes: [%s]\n}\n", clusterPort, strings.Join(routes, ", "))
	}
	n := &Node{Name: c.Name, URL: fmt.Sprintf("nats://127.0.0.1:%d", port), StoreDir: c.StoreDir, bin: bin,
		conf: filepath.Join(dir, c.Name+".conf"), log: filepath.Join(dir, c.Name+".log")}
	if err := os.WriteFile(n.conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	return n, nil
}

// StartNode starts one standalone nats-server process for c, its configuration and log in
// dir, and returns once it accepts connections with JetStream up.
func StartNode(ctx context.Context, bin, dir string, c NodeConfig) (*Node, error) {
	n, err := newNode(bin, dir, c, 0, nil)
	if err != nil {
		return nil, err
	}
	if err := n.Start(); err != nil {
		return nil, err
	}
	if err := WaitJetStream(ctx, n.URL, 30*time.Second); err != nil {
		n.Stop()
		return nil, fmt.Errorf("%s: %w\n%s", n.Name, err, n.LogTail(2000))
	}
	return n, nil
}

// Start starts the process (again, after Kill or Stop) without waiting for it to serve.
func (n *Node) Start() error {
	if n.cmd != nil {
		return fmt.Errorf("%s is already running", n.Name)
	}
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s (run make build, or harness.Build, first): %w", n.bin, err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { _ = cmd.Wait(); logf.Close(); close(exited) }(n.exited)
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone: a crash, with no chance to
// flush or hand over leadership.
func (n *Node) Kill() { n.signalAndWait(syscall.SIGKILL) }

// Stop shuts the process down cleanly (SIGINT) and waits for it; it does nothing if the
// process is not running.
func (n *Node) Stop() { n.signalAndWait(os.Interrupt) }

func (n *Node) signalAndWait(sig os.Signal) {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(sig)
	<-n.exited
	n.cmd = nil
}

// LogTail returns the last max bytes of the server's log, for a failing test to show.
func (n *Node) LogTail(max int) string {
	return fileTail(n.log, max)
}

// WaitJetStream polls url until a client connects and JetStream answers an account info
// request (in a cluster: once a meta leader is elected), or until within has passed.
func WaitJetStream(ctx context.Context, url string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last error
	for {
		last = jetStreamAnswers(ctx, url)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("JetStream at %s not up within %s: %w", url, within, last)
		case <-time.After(100 * time.Millisecond): // polling a starting process
		}
	}
}

func jetStreamAnswers(ctx context.Context, url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(actx)
	return err
}

// Cluster is a JetStream cluster of nats-server processes on loopback.
type Cluster struct {
	Nodes []*Node
}

// StartCluster starts n clustered nats-server processes named n1…nN, each with its store in
// dir/<name>/ and its configuration and log in dir, and returns once JetStream answers on
// every node (a meta leader is elected).
func StartCluster(ctx context.Context, bin, dir string, n int) (*Cluster, error) {
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[i], routes[i] = p, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	c := &Cluster{}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		node, err := newNode(bin, dir, NodeConfig{Name: name, StoreDir: filepath.Join(dir, name)}, ports[i], routes)
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, node)
	}
	for _, node := range c.Nodes {
		if err := node.Start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for _, node := range c.Nodes {
		if err := WaitJetStream(ctx, node.URL, 60*time.Second); err != nil {
			c.Stop()
			return nil, fmt.Errorf("%s: %w\n%s", node.Name, err, node.LogTail(2000))
		}
	}
	return c, nil
}

// URLs returns the client URLs of the nodes named (all when none is), comma-separated as
// NATS_URL takes them.
func (c *Cluster) URLs(names ...string) string {
	var urls []string
	for _, n := range c.Nodes {
		if len(names) == 0 || slices.Contains(names, n.Name) {
			urls = append(urls, n.URL)
		}
	}
	return strings.Join(urls, ",")
}

// Node returns the node whose server_name is name.
func (c *Cluster) Node(name string) (*Node, error) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node %q in the cluster", name)
}

// Stop stops every node that runs.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// StreamLeader returns the server name of stream's current leader, or "" while it has none
// (or the request fails, as it does while no node can answer for the stream). It waits at
// most half a second for an answer, so that polling it sees an election within that.
func StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) string {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return ""
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}

// ErrNotCaughtUp is returned by ReplicasCurrent while a replica lags behind its leader.
var ErrNotCaughtUp = errors.New("replica not caught up")

// ReplicasCurrent returns nil once stream has a leader and want-1 followers that are current
// and have no lag, or an error matching ErrNotCaughtUp that says which is behind.
func ReplicasCurrent(ctx context.Context, js jetstream.JetStream, stream string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return fmt.Errorf("%w: %s has no leader", ErrNotCaughtUp, stream)
	}
	if len(info.Cluster.Replicas)+1 != want {
		return fmt.Errorf("%w: %s has %d peers, want %d", ErrNotCaughtUp, stream, len(info.Cluster.Replicas)+1, want)
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current || r.Offline || r.Lag > 0 {
			return fmt.Errorf("%w: %s replica %s current=%t offline=%t lag=%d", ErrNotCaughtUp, stream, r.Name, r.Current, r.Offline, r.Lag)
		}
	}
	return nil
}
