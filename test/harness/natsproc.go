package harness

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// StartNATSProcess runs the nats-server binary bin as its own process with JetStream on a
// free loopback port and its store in dir, so that benchmarks measure it without sharing a
// garbage collector with the load. args are passed on (e.g. "-c", a configuration file;
// the listen address and store directory given here win over the file's). It returns the
// client URL and a function that stops it.
func StartNATSProcess(ctx context.Context, bin, dir string, args ...string) (string, func(), error) {
	port, err := FreePort()
	if err != nil {
		return "", nil, err
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	stop, err := RunNATSProcess(ctx, bin, append(args, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir), nil, url)
	return url, stop, err
}

// RunNATSProcess runs the nats-server binary bin with args, env added to this process's
// environment, and waits until a client connects to url with opts (credentials, TLS) —
// within 15 s, or it stops the server and returns the last connection error. The server's
// output is discarded; stop interrupts it and waits for it to exit.
func RunNATSProcess(ctx context.Context, bin string, args, env []string, url string, opts ...nats.Option) (stop func(), err error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (run make build first): %w", bin, err)
	}
	stop = func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }
	deadline := time.Now().Add(15 * time.Second)
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			nc.Close()
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("nats-server not reachable within 15 s: %w", err)
		}
		time.Sleep(50 * time.Millisecond) // polling a starting process
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
