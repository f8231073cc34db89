package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// killGrace is how long a process may take to exit on a SIGTERM before it is killed.
const killGrace = 15 * time.Second

// process is one binary of the system under test, run as its own OS process with its
// output appended to a log file, so that it can be killed, stopped and restarted.
type process struct {
	name string
	path string
	args []string
	env  []string // added to the campaign's own environment
	log  string

	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{}
	stopped   bool // SIGSTOPped
	expecting bool // the campaign is ending it: its exit is no surprise
	surprises []string
}

// start runs the process; it must not be running.
func (p *process) start() error {
	out, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.stopped, p.expecting = cmd, exited, false, false
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		out.Close()
		p.mu.Lock()
		if !p.expecting {
			p.surprises = append(p.surprises, fmt.Sprintf("%s exited by itself: %v", p.name, err))
		}
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// running reports whether the process has been started and has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// kill sends sig (SIGKILL, SIGTERM) and waits for the process to exit. A stopped process
// is continued after the signal, so that a SIGTERM can be handled.
func (p *process) kill(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, exited, stopped := p.cmd, p.exited, p.stopped
	p.expecting = true
	p.mu.Unlock()
	if cmd == nil || !p.running() {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: %v: %w", p.name, sig, err)
	}
	if stopped {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	select {
	case <-exited:
	case <-time.After(killGrace):
		_ = cmd.Process.Kill() // it did not drain in time
		<-exited
	}
	return nil
}

// pause sends SIGSTOP; resume SIGCONT.
func (p *process) pause() error  { return p.signalStop(syscall.SIGSTOP, true) }
func (p *process) resume() error { return p.signalStop(syscall.SIGCONT, false) }

func (p *process) signalStop(sig syscall.Signal, stopped bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s: not started", p.name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: %v: %w", p.name, sig, err)
	}
	p.stopped = stopped
	return nil
}

// unprompted returns and forgets the exits the campaign did not cause.
func (p *process) unprompted() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.surprises
	p.surprises = nil
	return s
}
