package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A server under test runs as a child process (vwbench serve-relay,
// vwbench serve-floor) so that the CPU time it reports is its own, not the
// viewers' or the publisher's.

// child is a server under test running as a child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	addr  string
	once  sync.Once
}

func startChild(ctx context.Context, exe, command string, stderr io.Writer, args ...string) (*child, error) {
	cmd := exec.CommandContext(ctx, exe, append([]string{command}, args...)...)
	cmd.Env = append(os.Environ(), "VWBENCH_CHILD=1")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s %s: %w", exe, command, err)
	}
	ch := &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, err := ch.out.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if err != nil || !ok {
		ch.stop()
		return nil, fmt.Errorf("%s %s did not say where it listens: %q %v", exe, command, line, err)
	}
	ch.addr = addr
	return ch, nil
}

// cpu asks the child for its CPU time so far (user + system).
func (c *child) cpu() (time.Duration, error) {
	if _, err := io.WriteString(c.stdin, "rusage\n"); err != nil {
		return 0, err
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("reading the child's rusage: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "rusage" {
		return 0, fmt.Errorf("the child answered %q to rusage", line)
	}
	user, err1 := strconv.ParseInt(f[1], 10, 64)
	sys, err2 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("the child answered %q to rusage: %w", line, err)
	}
	return time.Duration(user + sys), nil
}

// stop closes the child's stdin, which ends it, and waits for it.
func (c *child) stop() {
	c.once.Do(func() {
		_ = c.stdin.Close()
		done := make(chan struct{})
		go func() {
			_ = c.cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	})
}
