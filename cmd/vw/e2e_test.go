package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// freePort returns a loopback port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a running vw process whose log is kept for assertions.
type proc struct {
	cmd    *exec.Cmd
	addr   string       // host:port it serves on
	client *http.Client // for its HTTP routes; nil means plain http
	// baseURL is where its HTTP routes are: http://addr, or https:// when
	// a test gives it a certificate.
	baseURL string
	// statsToken is an admin token for a relay's /stats when auth is on.
	statsToken string
	mu         sync.Mutex
	log        bytes.Buffer
	done       chan struct{}
	err        error
}

// logText returns everything the process has logged so far.
func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

type logWriter struct{ p *proc }

func (w logWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if testing.Verbose() {
		os.Stderr.Write(b)
	}
	return w.p.log.Write(b)
}

// startVW runs `vw args...` with env added to a clean environment, waits
// until addr answers /healthcheck (or, for the relay, accepts connections),
// and stops it with SIGTERM when the test ends.
func startVW(t testing.TB, addr string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{addr: addr, baseURL: "http://" + addr, done: make(chan struct{})}
	p.cmd = exec.Command(vwBin, args...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	p.cmd.Stdout = logWriter{p}
	p.cmd.Stderr = logWriter{p}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	ok := testutil.WaitFor(10*time.Second, func() bool {
		select {
		case <-p.done:
			return true
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	select {
	case <-p.done:
		t.Fatalf("vw %s exited at start: %v\n%s", strings.Join(args, " "), p.err, p.logText())
	default:
	}
	if !ok {
		t.Fatalf("vw %s does not listen on %s\n%s", strings.Join(args, " "), addr, p.logText())
	}
	return p
}

// stop sends SIGTERM and waits for the process, which must exit 0 within 5 s.
func (p *proc) stop(t testing.TB) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("vw did not exit within 5 s of SIGTERM\n%s", p.logText())
		return fmt.Errorf("killed after 5 s")
	}
}

// kill ends the process with SIGKILL: no chance to clean up.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

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

// httpDo sends a request and returns status and body.
func httpDo(t testing.TB, method, url, body string) (int, string) {
	t.Helper()
	return httpDoWith(t, http.DefaultClient, method, url, body)
}

func httpDoWith(t testing.TB, c *http.Client, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// ffmpegArgs are the feeds the README tells a lab hoster to run, with lavfi
// test sources standing in for the camera and microphone.
func ffmpegArgs(kind, url string, extra ...string) []string {
	var in []string
	switch kind {
	case "video":
		in = []string{"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
			"-c:v", "mpeg1video", "-b:v", "500k", "-bf", "0"}
	case "audio":
		in = []string{"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
			"-c:a", "mp2", "-b:a", "64k", "-ar", "44100"}
	}
	args := append([]string{"-v", "error", "-nostdin"}, in...)
	args = append(args, extra...) // output options
	return append(args, "-f", "mpegts", "-muxdelay", "0.001", url)
}

// ffmpeg runs a real ffmpeg feed until the test ends; extra are output
// options (-t 3, -headers ...). It returns the process so a test can check it is still
// running: a feed must never be dropped by a rule change.
func ffmpeg(t testing.TB, kind, url string, extra ...string) *exec.Cmd {
	t.Helper()
	bin := testutil.NeedTool(t, "ffmpeg")
	cmd := exec.Command(bin, ffmpegArgs(kind, url, extra...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// alive reports whether a process started by exec is still running.
func alive(cmd *exec.Cmd) bool {
	return cmd.ProcessState == nil && cmd.Process.Signal(syscall.Signal(0)) == nil
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

// httpDoNoFail is httpDo for goroutines: it reports errors instead of
// failing the test.
func httpDoNoFail(method, url, body string) (int, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
