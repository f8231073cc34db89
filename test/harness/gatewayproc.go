package harness

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Build compiles the main package pkg into dir/name with the go command, resolving pkg in
// the module (or workspace) of the current directory, and returns the binary's path.
// Tests build the real binaries this way so that they run what `make build` ships.
func Build(ctx context.Context, dir, name, pkg string) (string, error) {
	bin := filepath.Join(dir, name)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// Gateway is a bin/gateway process.
type Gateway struct {
	URL string // http://127.0.0.1:port

	log    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartGateway runs the gateway binary bin against natsURLs (comma-separated) on a free
// loopback port with the extra flags args, its log in logPath, and returns once /readyz
// answers 200.
func StartGateway(ctx context.Context, bin, natsURLs, logPath string, args ...string) (*Gateway, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"-nats-url", natsURLs, "-http-addr", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	g := &Gateway{URL: "http://" + addr, log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(g.exited) }()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for !g.ready(ctx) {
		select {
		case <-g.exited:
			return nil, fmt.Errorf("gateway exited: %s", g.LogTail(2000))
		case <-ctx.Done():
			g.Stop()
			return nil, fmt.Errorf("gateway not ready within 60 s: %s", g.LogTail(2000))
		case <-time.After(100 * time.Millisecond): // polling a starting process
		}
	}
	return g, nil
}

func (g *Gateway) ready(ctx context.Context) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop shuts the gateway down as an operator would (SIGINT: in-flight requests finish) and
// waits for it to exit.
func (g *Gateway) Stop() {
	select {
	case <-g.exited:
	default:
		_ = g.cmd.Process.Signal(os.Interrupt)
		<-g.exited
	}
}

// Pid is the gateway's process id.
func (g *Gateway) Pid() int { return g.cmd.Process.Pid }

// LogTail returns the last max bytes of the gateway's log.
func (g *Gateway) LogTail(max int) string {
	return fileTail(g.log, max)
}

// fileTail returns the last max bytes of the file at path, or why it cannot be read.
func fileTail(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
