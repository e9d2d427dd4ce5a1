package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
)

// The settings of vw stream and vw relay, at the command level: the real
// binary, started the way systemd or a shell starts it. settings_rows_test.go
// holds one row per VW_ variable, settings_stream_test.go and
// settings_relay_test.go the checks the rows name; this file runs them,
// checks --help and the README against them, and checks the defaults that
// need a test of their own and every refusal to start.

// vwRun is one run of vw for a settings check.
type vwRun struct {
	*proc
	dir string // its working directory
}

// listening matches the line that says where vw listens, as text or JSON
// (VW_LOG_FORMAT).
var listening = regexp.MustCompile(`msg="vw (?:stream|relay) listening" addr="([^"]+)"|"addr":"([^"]+)".*"msg":"vw (?:stream|relay) listening"`)

// listenAddr returns the address the listening line in log names, or "".
func listenAddr(log string) string {
	if m := listening.FindStringSubmatch(log); m != nil {
		return m[1] + m[2]
	}
	return ""
}

// launch starts vw with env added to a clean environment (a HOME and a
// working directory of its own) and returns once it listens (its log says
// so, or the port env names accepts connections: a log level above info
// hides the line, and the port accepts just before it is written) or has
// exited; r.addr is where it listens; a run that does neither within 15 s fails
// the test. It is stopped with SIGTERM when the test ends.
func launch(t *testing.T, env []string, args ...string) *vwRun {
	t.Helper()
	dir := t.TempDir()
	cmd := vwCmd(t, env, args...)
	cmd.Dir = dir
	p := &proc{Proc: testutil.Start(t, cmd)}
	t.Cleanup(func() { p.stop(t) })
	known := portIn(env)
	var addr string
	testutil.Eventually(t, 15*time.Second, func() bool {
		if addr = listenAddr(p.logText()); addr != "" {
			return true
		}
		if known != "" {
			if c, err := net.DialTimeout("tcp", known, time.Second); err == nil {
				c.Close()
				addr = known
				return true
			}
		}
		return !p.Alive()
	}, "vw %v neither listens nor exits:\n%s", args, p.logText())
	if addr != "" {
		host, port, _ := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		p.addr = net.JoinHostPort(host, port)
		p.baseURL = "http://" + p.addr
	}
	return &vwRun{proc: p, dir: dir}
}

// portIn returns the loopback address the last VW_PORT or VW_RELAY_LISTEN
// in env names, unless it is port 0.
func portIn(env []string) string {
	addr := ""
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		switch k {
		case "VW_PORT":
			addr = "127.0.0.1:" + v
		case "VW_RELAY_LISTEN":
			addr = v
		}
	}
	if strings.HasSuffix(addr, ":0") {
		return ""
	}
	return addr
}

// listensAt returns the address the run's log says it listens on, or "".
func (r *vwRun) listensAt() string { return listenAddr(r.logText()) }

// running fails the test unless the run started and still runs.
func running(t *testing.T, r *vwRun) {
	t.Helper()
	if r.addr == "" || !r.Alive() {
		t.Fatalf("vw did not start: %v\n%s", r.Err(), r.logText())
	}
}

// refused fails the test unless the run refused to start: exit status 1
// and one line "vw: …" holding msg, and nothing listening.
func refused(t *testing.T, r *vwRun, msg string) {
	t.Helper()
	if r.Alive() {
		t.Fatalf("vw started (listening at %s); want it to refuse with %q\n%s", r.listensAt(), msg, r.logText())
	}
	out := r.logText()
	if code := r.ExitCode(); code != 1 || !strings.Contains(out, "vw: ") || !strings.Contains(out, msg) || r.listensAt() != "" {
		t.Fatalf("exit status %d, output:\n%s\nwant status 1 and \"vw: …%s…\"", code, out, msg)
	}
}

// baseEnv is what every settings run of a command gets: a free port.
func baseEnv(cmd string) []string {
	if cmd == "relay" {
		return []string{"VW_RELAY_LISTEN=127.0.0.1:0"}
	}
	return []string{"VW_PORT=0"}
}

// TestSettings runs every row of settings three times: without the
// variable (its default), with it (the environment is read), and with it
// and the flag set to something else (the flag wins), and checks in each
// that the running vw uses the value it should.
func TestSettings(t *testing.T) {
	for _, s := range settings {
		t.Run(s.cmd+"/"+s.env, func(t *testing.T) {
			t.Parallel()
			for _, variant := range []string{"default", "env", "flag wins"} {
				t.Run(variant, func(t *testing.T) {
					tr := s.try(t)
					env := slices.DeleteFunc(append(baseEnv(s.cmd), tr.env...), func(e string) bool {
						return strings.HasPrefix(e, s.env+"=")
					})
					args := []string{s.cmd}
					want := tr.def
					switch variant {
					case "default":
						if tr.noDefault != "" {
							t.Logf("the default is checked against --help and the README only: %s", tr.noDefault)
							return
						}
					case "env":
						env, want = append(env, s.env+"="+tr.envVal), tr.envVal
					case "flag wins":
						env = append(env, s.env+"="+tr.envVal)
						args, want = append(args, s.flag+"="+tr.flagVal), tr.flagVal
					}
					tr.check(t, launch(t, env, args...), want)
				})
			}
		})
	}
}

// helpFlag is one flag as `vw CMD --help` lists it.
type helpFlag struct{ flag, env, def string }

var helpLine = regexp.MustCompile(`^\s+(?:-\w, )?(--[a-z0-9-]+)(?: \w+)?\s+.*\(env (VW_[A-Z0-9_]+)\)(?: \(default (.*)\))?$`)

// help returns the settings `vw cmd --help` lists, by variable.
func help(t *testing.T, cmd string) map[string]helpFlag {
	t.Helper()
	p := testutil.Start(t, vwCmd(t, nil, cmd, "--help"))
	if err := p.Wait(t, 10*time.Second); err != nil {
		t.Fatalf("vw %s --help: %v\n%s", cmd, err, p.Output())
	}
	out := map[string]helpFlag{}
	for _, l := range strings.Split(p.Output(), "\n") {
		if m := helpLine.FindStringSubmatch(l); m != nil {
			out[m[2]] = helpFlag{flag: m[1], env: m[2], def: strings.Trim(m[3], `"`)}
		}
	}
	if len(out) == 0 {
		t.Fatalf("vw %s --help lists no setting:\n%s", cmd, p.Output())
	}
	return out
}

// readmeSettings returns the rows of the env | flag | default table in the
// README section that starts with heading.
func readmeSettings(t *testing.T, heading string) map[string]helpFlag {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n"+heading)
	if !ok {
		t.Fatalf("README.md has no %q section", heading)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	_, table, ok := strings.Cut(sec, "| env | flag | default | meaning |")
	if !ok {
		t.Fatalf("README section %q has no settings table", heading)
	}
	out := map[string]helpFlag{}
	row := regexp.MustCompile("^\\| `(VW_[A-Z0-9_]+)` \\| `(--[a-z0-9-]+)` \\| ([^|]+) \\|")
	for _, l := range strings.Split(table, "\n")[2:] {
		m := row.FindStringSubmatch(l)
		if m == nil {
			break
		}
		def := strings.TrimSpace(m[3])
		if def == "none" {
			def = ""
		}
		out[m[1]] = helpFlag{flag: m[2], env: m[1], def: def}
	}
	return out
}

// TestSettingsDocumented checks that --help, the README's tables and the
// rows of settings name the same variables with the same flags and
// defaults: a setting added without a README line or a test row fails here.
func TestSettingsDocumented(t *testing.T) {
	for cmd, heading := range map[string]string{"stream": "## vw stream", "relay": "## vw relay"} {
		t.Run(cmd, func(t *testing.T) {
			got, doc := help(t, cmd), readmeSettings(t, heading)
			rows := map[string]setting{}
			for _, s := range settings {
				if s.cmd == cmd {
					rows[s.env] = s
				}
			}
			for env, h := range got {
				d, ok := doc[env]
				switch {
				case !ok:
					t.Errorf("%s (%s) is not in the README's table", env, h.flag)
				case d.flag != h.flag:
					t.Errorf("%s: the README says %s, --help %s", env, d.flag, h.flag)
				case strings.Count(d.def, "`") == 2 && d.def != "`"+h.def+"`":
					t.Errorf("%s: the README's default is %s, --help's %q", env, d.def, h.def)
				case d.def == "" && h.def != "":
					t.Errorf("%s: the README says no default, --help %q", env, h.def)
				}
				if s, ok := rows[env]; !ok {
					t.Errorf("%s has no row in settings (settings_rows_test.go)", env)
				} else if s.flag != h.flag {
					t.Errorf("%s: the row says %s, --help %s", env, s.flag, h.flag)
				}
			}
			for env := range doc {
				if _, ok := got[env]; !ok {
					t.Errorf("the README names %s, which vw %s --help does not list", env, cmd)
				}
			}
			for env := range rows {
				if _, ok := got[env]; !ok {
					t.Errorf("settings has a row for %s, which vw %s --help does not list", env, cmd)
				}
			}
		})
	}
}

// TestDefaultPorts checks the defaults no row can run on a shared machine,
// where another program may hold the port: vw stream tries 127.0.0.1:8888
// and vw relay :8080 (listening there, or saying that it cannot).
func TestDefaultPorts(t *testing.T) {
	for _, tc := range []struct{ cmd, addr string }{{"stream", "127.0.0.1:8888"}, {"relay", ":8080"}} {
		t.Run(tc.cmd, func(t *testing.T) {
			r := launch(t, nil, tc.cmd)
			at := r.listensAt()
			_, port, _ := net.SplitHostPort(tc.addr)
			switch {
			case at != "":
				if h, p, _ := net.SplitHostPort(at); p != port || (tc.cmd == "stream" && h != "127.0.0.1") {
					t.Fatalf("vw %s listens at %s, want %s", tc.cmd, at, tc.addr)
				}
			case strings.Contains(r.logText(), tc.addr+": bind: address already in use"):
				t.Logf("%s is taken here; vw %s tried it", tc.addr, tc.cmd)
			default:
				t.Fatalf("vw %s neither listens at %s nor says it is taken:\n%s", tc.cmd, tc.addr, r.logText())
			}
		})
	}
}

// TestPortZero: VW_PORT=0 picks a free port, and the log says which.
func TestPortZero(t *testing.T) {
	r := launch(t, []string{"VW_PORT=0", "VW_STATE=off"}, "stream")
	running(t, r)
	if _, port, _ := net.SplitHostPort(r.listensAt()); port == "0" || port == "" {
		t.Fatalf("the log says %q", r.listensAt())
	}
	if status, body := httpDo(t, "GET", r.baseURL+"/healthcheck", ""); status != 200 || body != `"ok"` {
		t.Fatalf("healthcheck at the port the log names: %d %s", status, body)
	}
}

// TestStateDefault checks where rules are kept without VW_STATE, as the
// README says: $STATE_DIRECTORY/rules.json (systemd's StateDirectory),
// else ~/.local/state/vw/rules.json; VW_STATE=off keeps none, and says so.
func TestStateDefault(t *testing.T) {
	home, stateDir := t.TempDir(), t.TempDir()
	inHome := filepath.Join(home, ".local", "state", "vw", "rules.json")
	for _, tc := range []struct {
		name string
		env  []string
		want string // the file, or "" for none
	}{
		{"HOME", []string{"HOME=" + home}, inHome},
		{"STATE_DIRECTORY", []string{"HOME=" + home, "STATE_DIRECTORY=" + stateDir}, filepath.Join(stateDir, "rules.json")},
		{"off", []string{"HOME=" + home, "STATE_DIRECTORY=" + stateDir, "VW_STATE=off"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.RemoveAll(filepath.Dir(inHome))
			_ = os.Remove(filepath.Join(stateDir, "rules.json"))
			r := launch(t, append([]string{"VW_PORT=0"}, tc.env...), "stream")
			running(t, r)
			postRule(t, r.proc, "/api/streams", `{"stream":"s","feeds":["f"]}`)
			for _, f := range []string{inHome, filepath.Join(stateDir, "rules.json")} {
				b, err := os.ReadFile(f)
				if f == tc.want && (err != nil || !strings.Contains(string(b), `"s"`)) {
					t.Errorf("%s: %v %q, want the rules", f, err, b)
				}
				if f != tc.want && err == nil {
					t.Errorf("%s exists; the rules belong in %q", f, tc.want)
				}
			}
			if warned := strings.Contains(r.logText(), "VW_STATE=off: rules will not survive a restart"); warned != (tc.want == "") {
				t.Errorf("warned that rules will not survive a restart: %v", warned)
			}
		})
	}
}

// TestStartRefusals starts vw with each setting it must refuse: it exits
// with status 1 and says why in one line, without listening.
func TestStartRefusals(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() }) // after the parallel subtests
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	secretFile := filepath.Join(dir, "secret")
	ca := testutil.NewCA(t, dir, "ca")
	certA, _ := ca.Server(t, dir)
	_, keyB := ca.Server(t, dir)
	for f, content := range map[string]string{notDir: "x", secretFile: "0123456789abcdef0123456789abcdef"} {
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		msg  string
	}{
		{"stream: bad log level", []string{"VW_LOGLEVEL=loud"}, nil, `log level "loud": use trace, debug, info, warn, error, fatal or panic`},
		{"stream: a host others can reach, no token", []string{"VW_HOST=0.0.0.0"}, nil, "VW_HOST=0.0.0.0 lets other machines reach the API: set VW_API_TOKEN (--api-token) too"},
		{"stream: --host others can reach, no token", nil, []string{"--host=0.0.0.0"}, "set VW_API_TOKEN (--api-token) too"},
		{"stream: a short token on a host others can reach", []string{"VW_HOST=0.0.0.0", "VW_API_TOKEN=123456789012345"}, nil, "VW_API_TOKEN is 15 bytes: with VW_HOST=0.0.0.0 other machines can try to guess it"},
		{"stream: max rules not a number", []string{"VW_MAX_RULES=many"}, nil, "environment: envconfig.Process: assigning VW_MAX_RULES to MaxRules"},
		{"stream: port in use", []string{"VW_PORT=" + port}, nil, "127.0.0.1:" + port + ": bind: address already in use"},
		{"stream: port not a number", []string{"VW_PORT=abc"}, nil, "environment: envconfig.Process: assigning VW_PORT to Port"},
		{"stream: CA file missing", []string{"VW_CA_FILE=" + filepath.Join(dir, "nope.pem")}, nil, "VW_CA_FILE: "},
		{"stream: state folder unusable", []string{"VW_STATE=" + filepath.Join(notDir, "rules.json")}, nil, "state file: "},
		{"stream: unknown flag", nil, []string{"--nope"}, "unknown flag: --nope"},
		{"stream: an argument", nil, []string{"extra"}, `unknown command "extra" for "vw stream"`},
		{"relay: bad log level", []string{"VW_LOGLEVEL=loud"}, nil, `log level "loud"`},
		{"relay: short secret", []string{"VW_RELAY_SECRET=short"}, nil, "auth: relay secret is 5 bytes; need at least 32"},
		{"relay: secret file missing", []string{"VW_RELAY_SECRET_FILE=" + filepath.Join(dir, "nope")}, nil, "auth: relay secret file: open "},
		{"relay: secret and secret file", []string{"VW_RELAY_SECRET_FILE=" + secretFile, "VW_RELAY_SECRET=0123456789abcdef0123456789abcdef"}, nil, "auth: set VW_RELAY_SECRET or VW_RELAY_SECRET_FILE, not both"},
		{"relay: weak secret", []string{"VW_RELAY_SECRET=0123456789abcdef0123456789abcdef"}, nil, "auth: relay secret looks weak"},
		{"relay: trusted proxy not an address", []string{"VW_RELAY_TRUSTED_PROXIES=nonsense"}, nil, `VW_RELAY_TRUSTED_PROXIES: trusted proxy "nonsense": want an address or a CIDR`},
		{"relay: state folder unusable", []string{"VW_RELAY_SECRET=" + secretA, "VW_RELAY_STATE=" + filepath.Join(notDir, "relay.json")}, nil, "auth: state file"},
		{"relay: address in use", []string{"VW_RELAY_LISTEN=127.0.0.1:" + port}, nil, "127.0.0.1:" + port + ": bind: address already in use"},
		{"relay: certificate without key", []string{"VW_RELAY_TLS_CERT=" + certA}, nil, "TLS needs both VW_RELAY_TLS_CERT and VW_RELAY_TLS_KEY"},
		{"relay: key of another certificate", []string{"VW_RELAY_TLS_CERT=" + certA, "VW_RELAY_TLS_KEY=" + keyB}, nil, "TLS: tls: private key does not match public key"},
		{"relay: queue not a number", []string{"VW_RELAY_QUEUE=lots"}, nil, "environment: envconfig.Process: assigning VW_RELAY_QUEUE to Queue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd, _, _ := strings.Cut(tc.name, ":")
			env := append(baseEnv(cmd), tc.env...)
			// Waiting for the exit, with a deadline: a vw that wrongly
			// starts fails the test instead of hanging it.
			p := &proc{Proc: testutil.Start(t, vwCmd(t, env, append([]string{cmd}, tc.args...)...))}
			_ = p.Wait(t, 15*time.Second)
			refused(t, &vwRun{proc: p}, tc.msg)
		})
	}
}
