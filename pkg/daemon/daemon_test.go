package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/pkg/natsembed"
	"github.com/fieldstream/fieldstream/pkg/natstest"
)

func env(args []string, vars map[string]string, out io.Writer) daemon.Env {
	return daemon.Env{Args: args, Getenv: func(k string) string { return vars[k] }, Stdout: out, Stderr: out}
}

// TestRun: settings come from flags, then FS_ variables, then defaults; set-up failures
// and bad settings stop the program before it runs; an actor that returns stops it with
// its error; nothing asked to stop is an error.
func TestRun(t *testing.T) {
	srv := natstest.RunServer(t)
	errBoom := errors.New("boom")
	tests := []struct {
		name     string
		args     []string
		vars     map[string]string
		validate error
		wire     func(setup context.Context, p *daemon.Process) error
		wantErr  string // substring; "" for none
	}{
		{name: "one-shot actor returns nil", wire: func(_ context.Context, p *daemon.Process) error {
			p.Go(func(context.Context) error { return nil })
			return nil
		}},
		{name: "actor error stops the process", wire: func(_ context.Context, p *daemon.Process) error {
			p.Go(func(ctx context.Context) error { <-ctx.Done(); return nil })
			p.Go(func(context.Context) error { return errBoom })
			return nil
		}, wantErr: "boom"},
		{name: "wire error", wire: func(context.Context, *daemon.Process) error { return errBoom }, wantErr: "boom"},
		{name: "validate error before connecting", vars: map[string]string{"NATS_URL": "nats://127.0.0.1:1"}, validate: errBoom, wantErr: "boom"},
		{name: "bad log level from the environment", vars: map[string]string{"FS_LOG_LEVEL": "loud"}, wantErr: "-log-level"},
		{name: "bad log format", args: []string{"-log-format", "xml"}, wantErr: "-log-format"},
		{name: "unreachable NATS within the set-up deadline", args: []string{"-nats-url", "nats://127.0.0.1:1", "-setup-timeout", "300ms"},
			wantErr: "connect to NATS at nats://127.0.0.1:1"},
		{name: "set-up deadline from -setup-timeout", args: []string{"-setup-timeout", "50ms"}, wire: func(setup context.Context, _ *daemon.Process) error {
			<-setup.Done()
			return setup.Err()
		}, wantErr: "deadline exceeded"},
		{name: "address in use fails the set-up", wire: func(_ context.Context, p *daemon.Process) error {
			addr, err := p.ServeOps("127.0.0.1:0")
			if err != nil {
				return err
			}
			_, err = p.ServeOps(addr.String())
			return err
		}, wantErr: "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"NATS_URL": srv.ClientURL()}
			for k, v := range tt.vars {
				vars[k] = v
			}
			wire := tt.wire
			if wire == nil {
				wire = func(context.Context, *daemon.Process) error { return nil }
			}
			var out bytes.Buffer
			prog := daemon.Program{Name: "test", Wire: wire, Validate: func() error { return tt.validate }}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := daemon.Run(ctx, prog, env(tt.args, vars, &out))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Run = %v, want %q\n%s", err, tt.wantErr, out.String())
			}
		})
	}
}

// TestStopDrains: asked to stop, every actor is interrupted and returns and a request in
// flight is answered before what was deferred runs.
func TestStopDrains(t *testing.T) {
	srv := natstest.RunServer(t)
	ctx, stop := context.WithCancel(context.Background())
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var (
		base      = make(chan string, 1)
		inHandler = make(chan struct{})
		release   = make(chan struct{})
		order     []string
	)
	prog := daemon.Program{Name: "test", Flags: fs, Wire: func(_ context.Context, p *daemon.Process) error {
		addr, err := p.Serve("127.0.0.1:0", &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			close(inHandler)
			<-release
			_, _ = w.Write([]byte("answered"))
		})})
		if err != nil {
			return err
		}
		p.Go(func(ctx context.Context) error { <-ctx.Done(); order = append(order, "actor"); return nil })
		p.Defer(func() { order = append(order, "deferred") })
		base <- "http://" + addr.String()
		return nil
	}}
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, prog, env(nil, map[string]string{"NATS_URL": srv.ClientURL()}, io.Discard))
	}()
	url := <-base
	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			answer <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- string(b)
	}()
	<-inHandler
	stop()
	close(release)
	if got := <-answer; got != "answered" {
		t.Errorf("request in flight at stop: %q, want it answered", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil for a stop asked for", err)
	}
	if fmt.Sprint(order) != "[actor deferred]" {
		t.Errorf("order %v, want the actor stopped before what was deferred", order)
	}
}

// TestEmbed: with Embed and no -nats-url the program runs its own JetStream server, with
// its store where -data-dir says, and shuts it down after the connection drained.
func TestEmbed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var stored atomic.Bool
	prog := daemon.Program{Name: "test", Embed: natsembed.Embed("embedded"), Wire: func(setup context.Context, p *daemon.Process) error {
		if p.Embedded == nil || p.Embedded.StoreDir != dir {
			return fmt.Errorf("embedded %+v, want store %s", p.Embedded, dir)
		}
		if _, err := p.JetStream.AccountInfo(setup); err != nil {
			return err
		}
		stored.Store(true)
		p.Go(func(context.Context) error { return nil })
		return nil
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port: 0 would be the nats CLI's 4222
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = daemon.Run(context.Background(), prog, env([]string{"-data-dir", dir, "-nats-listen", addr}, nil, io.Discard))
	if err != nil || !stored.Load() {
		t.Fatalf("Run = %v", err)
	}
}

// TestReadyz: ServeOps' /readyz answers 200 only while NATS is connected and every
// ReadyWhen check passes, and says why not otherwise; /healthz answers while HTTP is served.
func TestReadyz(t *testing.T) {
	srv := natstest.RunServer(t)
	nc, _ := natstest.Connect(t, srv)
	p, err := daemon.New("test", nc, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	p.ReadyWhen(func(context.Context) error {
		if failing.Load() {
			return errors.New("stream EVENTS: no leader")
		}
		return nil
	})
	addr, err := p.ServeOps("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, false) }()
	defer func() { stop(); <-done }()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	natstest.Eventually(t, 5*time.Second, "/readyz 200", func() bool { code, _ := get("/readyz"); return code == http.StatusOK })
	failing.Store(true)
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no leader") {
		t.Errorf("/readyz with a failing check = %d %q, want 503 with the reason", code, body)
	}
	failing.Store(false)
	srv.Shutdown()
	natstest.Eventually(t, 5*time.Second, "NATS disconnected", func() bool { return !nc.IsConnected() })
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not connected to NATS") {
		t.Errorf("/readyz without NATS = %d %q, want 503 not connected", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz without NATS = %d, want 200 (the process serves)", code)
	}
}

// TestWaitsForNATS: a program started before its NATS server (containers start in any
// order; a restarted server takes a moment) waits for it within the set-up deadline.
func TestWaitsForNATS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	wired := make(chan struct{})
	prog := daemon.Program{Name: "test", Wire: func(setup context.Context, p *daemon.Process) error {
		if _, err := p.JetStream.AccountInfo(setup); err != nil {
			return err
		}
		close(wired)
		p.Go(func(context.Context) error { return nil })
		return nil
	}}
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(context.Background(), prog, env([]string{"-nats-url", fmt.Sprintf("nats://127.0.0.1:%d", port)}, nil, io.Discard))
	}()
	select { // not waiting for work: the program must be waiting for a server that is not there
	case err := <-done:
		t.Fatalf("Run returned before NATS started: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	natstest.RunServerAt(t, port, t.TempDir())
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	select {
	case <-wired:
	default:
		t.Fatal("the program was not wired")
	}
}
