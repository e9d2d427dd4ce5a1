// Package testutil owns what every test in this module shares: waiting on a
// condition with a deadline instead of sleeping, a clock the test moves by
// hand (Clock), finding the real tools (ffmpeg, ffprobe, chromium, the
// jsmpeg library) a test needs, skipping without them except in CI, where a
// missing tool is a failure; starting processes that are reaped as they
// exit (Proc), the README's ffmpeg feeds (Feed), one HTTP request helper
// (Do), websocket dials (Dial, Handshake), and a throw-away certificate
// authority with server certificates for TLS tests.
package testutil

import (
	"context"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// Eventually polls cond every few milliseconds until it returns true or the
// timeout passes, and then fails the test with msg.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	if !WaitFor(timeout, cond) {
		t.Fatalf("after %v: "+msg, append([]any{timeout}, args...)...)
	}
}

// WaitFor polls cond until it returns true or the timeout passes, and
// reports which.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

// InCI reports whether the tests run in CI, where every tool must be present.
func InCI() bool { return os.Getenv("CI") == "true" }

// NeedTool returns the path of the named program. Without it the test is
// skipped, or fails when CI=true so that a green CI always means the real
// path ran.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, "%s not found (%v); install it (make test does) to run this test", name, err)
	}
	return p
}

// Unavailable skips a test that cannot run here for want of something the
// machine lacks, or fails it in CI (CI=true), where everything must run: a
// green CI means nothing was skipped. Every skip in this module goes
// through here.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("required in CI (CI=true): "+format, args...)
	}
	t.Skipf(format, args...)
}

// Log returns a logger for code under test, tagged with the test's name:
// silent unless the test runs with -v. It writes to stderr rather than t.Log
// because goroutines under test may log after the test has returned.
func Log(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.SetLevel(logrus.DebugLevel)
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(os.Stderr)
	}
	return l.WithField("test", t.Name())
}

// Context returns a context cancelled when the test ends or after timeout.
func Context(t testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}
