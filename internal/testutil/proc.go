package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a process a test started. Its own goroutine waits for it from the
// start, so the process never lingers as a zombie and Alive is exact: a
// process is alive until it has exited. (Signal 0 succeeds on a zombie and
// exec.Cmd.ProcessState stays nil until someone calls Wait, so neither can
// tell a dead process from a live one.)
type Proc struct {
	name string
	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
	err  error // how it ended; valid once done is closed
}

// Start starts cmd and reaps it when it exits; the process is killed (its
// whole group if cmd asks for one) when the test ends. Unless the caller set
// them, stdout and stderr are kept for Output, and copied to stderr under -v.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{name: filepath.Base(cmd.Path), cmd: cmd, out: &SyncBuffer{}, done: make(chan struct{})}
	var w io.Writer = p.out
	if testing.Verbose() {
		w = io.MultiWriter(p.out, os.Stderr)
	}
	if cmd.Stdout == nil {
		cmd.Stdout = w
	}
	if cmd.Stderr == nil {
		cmd.Stderr = w
	}
	// A grandchild that inherited the output pipe must not keep Wait, and
	// so Alive, from seeing that the process itself has exited.
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = time.Second
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// StartReading is Start for a process whose stdout the test reads (ffmpeg
// writing to pipe:1). The reader ends with io.EOF once the process and
// anything it started have exited, after everything they wrote.
func StartReading(t testing.TB, cmd *exec.Cmd) (*Proc, io.Reader) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	p := Start(t, cmd)
	// The child holds its own copy; ours would keep the reader from EOF.
	_ = w.Close()
	t.Cleanup(func() { _ = r.Close() })
	return p, r
}

// Alive reports whether the process has not exited yet.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Done is closed once the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns how the process ended (nil for exit status 0), once Done is
// closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// ExitCode returns the exit status, -1 if a signal ended the process.
func (p *Proc) ExitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process has written so far to the stdout and
// stderr that Start kept.
func (p *Proc) Output() string { return p.out.String() }

// Wait waits for the process to exit by itself and returns how it ended; it
// fails the test (after killing the process) if that takes over timeout.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		t.Fatalf("%s did not exit within %v\n%s", p.name, timeout, p.Output())
		return nil
	}
}

// Signal sends sig to the process, or to its group if it has one of its
// own: the group may outlive its leader.
func (p *Proc) Signal(sig syscall.Signal) error {
	if a := p.cmd.SysProcAttr; a != nil && a.Setpgid {
		return syscall.Kill(-p.cmd.Process.Pid, sig)
	}
	if !p.Alive() {
		return nil // reaped: the pid may be someone else's now
	}
	return p.cmd.Process.Signal(sig)
}

// GroupAlive reports whether any process of the group a Setpgid process
// leads is still running.
func (p *Proc) GroupAlive() bool {
	return syscall.Kill(-p.cmd.Process.Pid, 0) == nil
}

// ErrKilled says that Stop had to kill a process that did not obey.
var ErrKilled = errors.New("killed")

// Stop sends sig and waits up to grace for the process to exit, killing it
// after that. It returns how the process ended, or an error saying that it
// had to be killed.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("%s did not exit within %v of %v: %w", p.name, grace, sig, ErrKilled)
	}
}

// Kill ends the process (and its group) with SIGKILL and waits until it
// has been reaped.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// SyncBuffer is a bytes.Buffer that writers on other goroutines (a
// process's output copier, a logger) and a test may use at once.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
