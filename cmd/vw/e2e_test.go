package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/freeport"
	"github.com/vwlab/vw/internal/testutil"
)

// vwBin is the vw binary the end-to-end tests run, built once by TestMain:
// these tests drive the program a user runs, as a separate process, the way
// systemd and a terminal do.
var vwBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vw-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vwBin = filepath.Join(dir, "vw")
	build := exec.Command("go", "build", "-o", vwBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building vw:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback port nobody listens on right now, for a vw
// process to bind (see freeport for why not ":0").
func freePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is a running vw process whose log is kept for assertions.
type proc struct {
	*testutil.Proc
	addr   string       // host:port it serves on
	client *http.Client // for its HTTP routes; nil means plain http
	// baseURL is where its HTTP routes are: http://addr, or https:// when
	// a test gives it a certificate.
	baseURL string
	// statsToken is an admin token for a relay's /stats when auth is on.
	statsToken string
}

// logText returns everything the process has logged so far.
func (p *proc) logText() string { return p.Output() }

// vwCmd is `vw args...` with env added to a clean environment (and a HOME
// of its own, so that nothing of the machine's leaks in).
func vwCmd(t testing.TB, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(vwBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	return cmd
}

// startVW runs `vw args...` with env added to a clean environment, waits
// until addr accepts connections, and stops it with SIGTERM when the test
// ends.
func startVW(t testing.TB, addr string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{Proc: testutil.Start(t, vwCmd(t, env, args...)), addr: addr, baseURL: "http://" + addr}
	t.Cleanup(func() { p.stop(t) })
	ok := testutil.WaitFor(10*time.Second, func() bool {
		if !p.Alive() {
			return true
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if !p.Alive() {
		t.Fatalf("vw %s exited at start: %v\n%s", strings.Join(args, " "), p.Err(), p.logText())
	}
	if !ok {
		t.Fatalf("vw %s does not listen on %s\n%s", strings.Join(args, " "), addr, p.logText())
	}
	return p
}

// stop sends SIGTERM and waits for the process, which must exit 0 within 5 s.
func (p *proc) stop(t testing.TB) error {
	err := p.Stop(syscall.SIGTERM, 5*time.Second)
	if errors.Is(err, testutil.ErrKilled) {
		t.Errorf("vw: %v\n%s", err, p.logText())
	}
	return err
}

// kill ends the process with SIGKILL: no chance to clean up.
func (p *proc) kill() { p.Kill() }

// streamProc starts `vw stream` on a free port with a state file in the
// test's folder, plus any extra environment.
func streamProc(t testing.TB, env ...string) *proc {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	base := []string{
		"VW_PORT=" + strconv.Itoa(port),
		"VW_STATE=" + filepath.Join(dir, "rules.json"),
		"VW_RECORDINGS=" + filepath.Join(dir, "recordings"),
		"VW_LOGLEVEL=debug",
	}
	return startVW(t, "127.0.0.1:"+strconv.Itoa(port), append(base, env...), "stream")
}

// relayProc starts `vw relay` on a free port.
func relayProc(t testing.TB, env ...string) *proc {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	return startVW(t, addr, append([]string{"VW_RELAY_LISTEN=" + addr, "VW_LOGLEVEL=debug"}, env...), "relay")
}

// httpDo sends a request and returns status and body, trimmed.
func httpDo(t testing.TB, method, url, body string) (int, string) {
	t.Helper()
	r := testutil.Do(t, testutil.Req{Method: method, URL: url, Body: body})
	return r.Status, strings.TrimSpace(r.Body)
}

// ffmpeg runs the README's camera ("video") or microphone ("audio") feed
// to url until the test ends; extra are output options (-t 3, -headers
// ...). A test checks the returned process is still alive: a feed must
// never be dropped by a rule change.
func ffmpeg(t testing.TB, kind, url string, extra ...string) *testutil.Proc {
	t.Helper()
	return testutil.StartFeed(t, testutil.Feed{Video: kind == "video", Audio: kind == "audio", Out: url, Extra: extra})
}

// secretFile writes the secret s, and a newline, to a file of its own and
// returns the file's path.
func secretFile(t testing.TB, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lines splits s on newlines, dropping blank ones.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
