package main

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/internal/testutil"
)

// setting is one VW_ variable of a command and its flag. A new setting is
// one row here; TestSettingsDocumented fails until it has one.
type setting struct {
	cmd, env, flag string
	// try makes what one run of the check needs (files, servers, ports),
	// fresh for each run.
	try func(t *testing.T) trial
}

// trial is one run's values and the check that vw runs with one of them.
type trial struct {
	env []string // the rest of the environment the check needs
	// def is the default; envVal and flagVal two other values, different
	// from each other, for the variable and for the flag.
	def, envVal, flagVal string
	// noDefault says why the default cannot be run here (TestDefaultPorts
	// and TestSettingsDocumented cover it).
	noDefault string
	// check fails the test unless r runs with the value v.
	check func(t *testing.T, r *vwRun, v string)
}

// fixed is a trial whose values need nothing made.
func fixed(tr trial) func(*testing.T) trial { return func(*testing.T) trial { return tr } }

const (
	secretA = "0123456789abcdef0123456789abcdef-A"
	secretB = "0123456789abcdef0123456789abcdef-B"
)

var settings = []setting{
	// vw stream
	{"stream", "VW_HOST", "--host", fixed(trial{def: "127.0.0.1", envVal: "127.0.0.2", flagVal: "127.0.0.3", check: listensOnHost})},
	{"stream", "VW_PORT", "--port", func(t *testing.T) trial {
		return trial{envVal: strconv.Itoa(freePort(t)), flagVal: strconv.Itoa(freePort(t)), check: listensOnPort,
			noDefault: "8888 may be taken on a shared machine"}
	}},
	{"stream", "VW_LOGLEVEL", "--loglevel", func(t *testing.T) trial {
		// VW_STATE=off: a warning at start. A port of its own: a level
		// above info hides the line that says which port.
		return trial{env: []string{"VW_STATE=off", "VW_PORT=" + strconv.Itoa(freePort(t))},
			def: "info", envVal: "warn", flagVal: "error", check: logsAt}
	}},
	{"stream", "VW_API", "--api", fixed(trial{envVal: "ws://127.0.0.1:1/bi/env/api", flagVal: "ws://127.0.0.1:1/bi/flag/api", check: apiRuleTo})},
	{"stream", "VW_API_RELAY_TOKEN", "--api-relay-token", func(t *testing.T) trial {
		relay := &handshakes{}
		srv := startHandshakes(t, relay)
		return trial{env: []string{"VW_API=" + srv + "/bi/lab1/api"}, envVal: "tok-env", flagVal: "tok-flag",
			check: func(t *testing.T, r *vwRun, v string) { relay.sawToken(t, v) }}
	}},
	{"stream", "VW_API_TOKEN", "--api-token", fixed(trial{envVal: "tok-env", flagVal: "tok-flag", check: apiNeedsToken})},
	{"stream", "VW_RECORDINGS", "--recordings", func(t *testing.T) trial {
		return trial{def: "./recordings", envVal: t.TempDir(), flagVal: t.TempDir(), check: recordsIn}
	}},
	{"stream", "VW_STATE", "--state", func(t *testing.T) trial {
		home := t.TempDir()
		return trial{env: []string{"HOME=" + home}, envVal: filepath.Join(t.TempDir(), "env.json"), flagVal: filepath.Join(t.TempDir(), "flag.json"),
			check: func(t *testing.T, r *vwRun, v string) {
				if v == "" {
					v = filepath.Join(home, ".local", "state", "vw", "rules.json")
				}
				if _, err := os.Stat(v); err != nil {
					t.Fatalf("no state file: %v", err)
				}
			}}
	}},
	{"stream", "VW_ALLOWED_HOSTS", "--allowed-hosts", fixed(trial{envVal: "env.example", flagVal: "flag.example", check: allowsHost})},
	{"stream", "VW_MAX_FEEDS_PER_STREAM", "--max-feeds-per-stream", fixed(trial{def: "16", envVal: "2", flagVal: "3", check: maxFeeds})},
	{"stream", "VW_MAX_RULES", "--max-rules", fixed(trial{def: "256", envVal: "2", flagVal: "3", check: maxRules})},
	{"stream", "VW_CA_FILE", "--ca-file", func(t *testing.T) trial {
		ca := testutil.NewCA(t, t.TempDir(), "lab-ca")
		return trial{envVal: filepath.Join(t.TempDir(), "missing.pem"), flagVal: ca.PEMFile, check: func(t *testing.T, r *vwRun, v string) {
			if _, err := os.Stat(v); v != "" && err != nil {
				refused(t, r, "VW_CA_FILE: ")
				return
			}
			running(t, r)
		}}
	}},

	// vw relay
	{"relay", "VW_RELAY_LISTEN", "--listen", func(t *testing.T) trial {
		return trial{envVal: "127.0.0.1:" + strconv.Itoa(freePort(t)), flagVal: "127.0.0.1:" + strconv.Itoa(freePort(t)),
			check: func(t *testing.T, r *vwRun, v string) {
				if at := r.listensAt(); at != v {
					t.Fatalf("listens at %q, want %s\n%s", at, v, r.logText())
				}
			}, noDefault: ":8080 may be taken on a shared machine"}
	}},
	{"relay", "VW_LOGLEVEL", "--loglevel", func(t *testing.T) trial {
		return trial{env: []string{"VW_RELAY_LISTEN=127.0.0.1:" + strconv.Itoa(freePort(t))},
			def: "info", envVal: "warn", flagVal: "error", check: logsAt}
	}},
	{"relay", "VW_RELAY_SECRET_FILE", "--secret-file", func(t *testing.T) trial {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		for f, s := range map[string]string{a: secretA + "\n", b: secretB} {
			if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return trial{envVal: a, flagVal: b, check: func(t *testing.T, r *vwRun, v string) {
			secret, err := auth.Secret("", v)
			if v != "" && err != nil {
				t.Fatal(err)
			}
			signedWith(t, r, secret, "vw-relay")
		}}
	}},
	{"relay", "VW_RELAY_SECRET", "--secret", fixed(trial{envVal: secretA, flagVal: secretB, check: func(t *testing.T, r *vwRun, v string) {
		var secret []byte
		if v != "" {
			secret = []byte(v)
		}
		signedWith(t, r, secret, "vw-relay")
	}})},
	{"relay", "VW_RELAY_AUDIENCE", "--audience", fixed(trial{env: []string{"VW_RELAY_SECRET=" + secretA},
		def: "vw-relay", envVal: "aud-env", flagVal: "aud-flag", check: func(t *testing.T, r *vwRun, v string) {
			signedWith(t, r, []byte(secretA), v)
		}})},
	{"relay", "VW_RELAY_PUBLIC", "--public", fixed(trial{env: []string{"VW_RELAY_SECRET=" + secretA},
		envVal: "pubenv/", flagVal: "pubflag/", check: publicPrefix})},
	{"relay", "VW_RELAY_TLS_CERT", "--tls-cert", func(t *testing.T) trial {
		p := newTLSPair(t)
		return trial{env: []string{"VW_RELAY_TLS_KEY=" + p.keyA}, envVal: p.certA, flagVal: p.certB, check: p.servesA}
	}},
	{"relay", "VW_RELAY_TLS_KEY", "--tls-key", func(t *testing.T) trial {
		p := newTLSPair(t)
		return trial{env: []string{"VW_RELAY_TLS_CERT=" + p.certA}, envVal: p.keyA, flagVal: p.keyB, check: p.servesA}
	}},
	// A viewer that never reads is dropped once its queue (messages, then
	// bytes) overflows; 40 MB sent overflows 2 messages or 8 MiB, not 256
	// or 1000 messages or 1 GiB.
	{"relay", "VW_RELAY_QUEUE", "--queue", fixed(trial{env: []string{"VW_RELAY_QUEUE_BYTES=1073741824"},
		def: "256", envVal: "2", flagVal: "1000", check: dropsStalledViewer(20, "messages")})},
	{"relay", "VW_RELAY_QUEUE_BYTES", "--queue-bytes", fixed(trial{env: []string{"VW_RELAY_QUEUE=100000"},
		def: "8388608", envVal: "1048576", flagVal: "1073741824", check: dropsStalledViewer(20<<20, "bytes")})},
	{"relay", "VW_RELAY_MAX_MESSAGE", "--max-message", fixed(trial{def: "1048576", envVal: "1000", flagVal: "2000", check: maxMessage})},
	{"relay", "VW_RELAY_MAX_VIEWERS", "--max-viewers", fixed(trial{def: "1000", envVal: "2", flagVal: "3", check: maxViewers,
		noDefault: "1000 viewers from one address pass the 100 connections per address"})},
	{"relay", "VW_RELAY_MAX_CONNS_PER_ADDR", "--max-conns-per-addr", fixed(trial{def: "100", envVal: "2", flagVal: "3", check: maxConnsPerAddr})},
}

// allowsHost checks that a request naming Host v is served (v "" names
// none) and one naming another is refused with 403.
func allowsHost(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	for _, host := range []string{"env.example", "flag.example", "other.example"} {
		req, err := http.NewRequest(http.MethodGet, r.baseURL+"/api/streams/all", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if want := map[bool]int{true: 200, false: 403}[host == v]; resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// maxFeeds checks that a stream rule of v feeds is taken and one of v+1 is
// refused, naming the limit.
func maxFeeds(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	n, _ := strconv.Atoi(v)
	feeds := func(k int) string {
		var f []string
		for i := range k {
			f = append(f, `"f`+strconv.Itoa(i)+`"`)
		}
		return `{"stream":"s","feeds":[` + strings.Join(f, ",") + `]}`
	}
	postRule(t, r.proc, "/api/streams", feeds(n))
	if status, body := httpDo(t, "POST", r.baseURL+"/api/streams", feeds(n+1)); status != 400 || !strings.Contains(body, "at most "+v+" (VW_MAX_FEEDS_PER_STREAM)") {
		t.Fatalf("a rule of %d feeds: %d %s", n+1, status, body)
	}
}

// maxRules checks that v stream rules are taken and the next is refused,
// naming the limit.
func maxRules(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	n, _ := strconv.Atoi(v)
	for i := range n {
		postRule(t, r.proc, "/api/streams", `{"stream":"s`+strconv.Itoa(i)+`","feeds":["f"]}`)
	}
	if status, body := httpDo(t, "POST", r.baseURL+"/api/streams", `{"stream":"one-more","feeds":["f"]}`); status < 400 || !strings.Contains(body, "already "+v+" stream rules") {
		t.Fatalf("stream rule %d: %d %s", n+1, status, body)
	}
}

func listensOnHost(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	if host := strings.Split(r.listensAt(), ":")[0]; host != v {
		t.Fatalf("listens at %s, want host %s", r.listensAt(), v)
	}
	if status, _ := httpDo(t, "GET", r.baseURL+"/healthcheck", ""); status != 200 {
		t.Fatalf("healthcheck at %s: %d", r.baseURL, status)
	}
}

func listensOnPort(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	if !strings.HasSuffix(r.listensAt(), ":"+v) {
		t.Fatalf("listens at %s, want port %s", r.listensAt(), v)
	}
}

// logsAt stops r and checks its log holds lines of the levels at or above
// v and none below (whether anything logs at debug at start is not v's
// business).
func logsAt(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	rank := map[string]int{"error": 2, "warn": 3, "warning": 3, "info": 4, "debug": 5}
	for _, lvl := range []string{"warning", "info", "debug"} {
		has, want := strings.Contains(r.logText(), "level="+lvl), rank[v] >= rank[lvl]
		if has != want && !(lvl == "debug" && want) {
			t.Errorf("at log level %s, lines of level %s: %v, want %v\n%s", v, lvl, has, want, r.logText())
		}
	}
}

func apiRuleTo(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	status, body := httpDo(t, "GET", r.baseURL+"/api/destinations/all", "")
	if has := strings.Contains(body, `"apiRule"`); status != 200 || has != (v != "") || !strings.Contains(body, v) {
		t.Fatalf("destinations: %d %s; want apiRule to %q", status, body, v)
	}
}

func apiNeedsToken(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	want := 200
	if v != "" {
		want = 401
		if got := testutil.Do(t, testutil.Req{URL: r.baseURL + "/api/streams/all", Token: v}); got.Status != 200 {
			t.Fatalf("with token %q: %d %s", v, got.Status, got.Body)
		}
	}
	if got := testutil.Do(t, testutil.Req{URL: r.baseURL + "/api/streams/all", Token: "tok-other"}); got.Status != want {
		t.Fatalf("with another token: %d, want %d", got.Status, want)
	}
}

// recordsIn checks that a destination's file lands in folder v (relative
// to vw's working directory).
func recordsIn(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	postRule(t, r.proc, "/api/destinations", `{"stream":"cam","destination":"ws://127.0.0.1:1/in/cam","id":"0","file":"rec.ts"}`)
	if !filepath.IsAbs(v) {
		v = filepath.Join(r.dir, v)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(v, "rec.ts"))
		return err == nil
	}, "no recording in %s", v)
}

// handshakes is a stand-in relay route that records the Authorization of
// every handshake and refuses it.
type handshakes struct {
	mu   sync.Mutex
	seen []string
}

func startHandshakes(t *testing.T, h *handshakes) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.mu.Lock()
		h.seen = append(h.seen, req.Header.Get("Authorization"))
		h.mu.Unlock()
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// sawToken waits for a handshake with token v (none for "").
func (h *handshakes) sawToken(t *testing.T, v string) {
	t.Helper()
	want := ""
	if v != "" {
		want = "Bearer " + v
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, s := range h.seen {
			if s == want {
				return true
			}
		}
		return false
	}, "the apiRule never presented %q", want)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.seen {
		if s != want {
			t.Fatalf("the apiRule presented %q, want only %q", s, want)
		}
	}
}

// signedWith checks that /out/ needs a token signed with secret for
// audience (or nothing, for a nil secret).
func signedWith(t *testing.T, r *vwRun, secret []byte, audience string) {
	t.Helper()
	running(t, r)
	url := "ws://" + r.addr + "/out/lab1/cam"
	if secret == nil {
		if got := dialStatus(t, url, ""); got != http.StatusSwitchingProtocols {
			t.Fatalf("an open relay refused a viewer: %d", got)
		}
		return
	}
	if got := dialStatus(t, url, ""); got != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", got)
	}
	for _, tc := range []struct {
		secret   []byte
		audience string
		want     int
	}{
		{secret, audience, http.StatusSwitchingProtocols},
		{secret, audience + "-other", http.StatusUnauthorized},
		{[]byte(string(secret) + "-other"), audience, http.StatusUnauthorized},
	} {
		a, err := auth.New(auth.Config{Secret: tc.secret, Audience: tc.audience}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := a.Mint("lab1/", []string{auth.ScopeRead}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got := dialStatus(t, url, tok); got != tc.want {
			t.Fatalf("a token for audience %q: %d, want %d", tc.audience, got, tc.want)
		}
	}
}

// publicPrefix checks that /out/ under v (none for "") needs no token and
// the rest does.
func publicPrefix(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	if v != "" {
		if got := dialStatus(t, "ws://"+r.addr+"/out/"+v+"cam", ""); got != http.StatusSwitchingProtocols {
			t.Fatalf("/out/%scam without a token: %d, want 101", v, got)
		}
	}
	for _, p := range []string{"demo/", "pubenv/", "pubflag/"} {
		if p == v {
			continue
		}
		if got := dialStatus(t, "ws://"+r.addr+"/out/"+p+"cam", ""); got != http.StatusUnauthorized {
			t.Fatalf("/out/%scam without a token: %d, want 401", p, got)
		}
	}
}

// tlsPair is two server certificates with their keys, from one CA.
type tlsPair struct {
	ca                       *testutil.CA
	certA, keyA, certB, keyB string
}

func newTLSPair(t *testing.T) *tlsPair {
	dir := t.TempDir()
	p := &tlsPair{ca: testutil.NewCA(t, dir, "ca")}
	p.certA, p.keyA = p.ca.Server(t, dir)
	p.certB, p.keyB = p.ca.Server(t, dir)
	return p
}

// servesA checks that a run given certificate A and key A (v is one of
// them) serves HTTPS, that one given B's half refuses to start (a pair
// that does not match), and one given nothing refuses too (half a pair).
func (p *tlsPair) servesA(t *testing.T, r *vwRun, v string) {
	t.Helper()
	switch v {
	case "":
		refused(t, r, "TLS needs both VW_RELAY_TLS_CERT and VW_RELAY_TLS_KEY")
	case p.certB, p.keyB:
		refused(t, r, "TLS: tls: private key does not match public key")
	default:
		running(t, r)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool()}}}
		if got := testutil.Do(t, testutil.Req{URL: "https://" + r.addr + "/healthcheck", Client: c}); got.Status != 200 {
			t.Fatalf("https healthcheck: %d", got.Status)
		}
	}
}

// dropsStalledViewer returns a check that a viewer that never reads is
// dropped for its queue of messages or bytes (so said in the close reason:
// a write deadline passing drops it too, later and without one) after
// 40 MB when v is below limit, and is still connected after them otherwise.
func dropsStalledViewer(limit int, unit string) func(t *testing.T, r *vwRun, v string) {
	return func(t *testing.T, r *vwRun, v string) {
		t.Helper()
		running(t, r)
		n, _ := strconv.Atoi(v)
		pub := dialRaw(t, "ws://"+r.addr+"/in/q")
		stalled := dialRaw(t, "ws://"+r.addr+"/out/q")
		testutil.Eventually(t, 10*time.Second, func() bool {
			ts, ok := topicStats(t, r.proc, "out/q")
			return ok && ts.Publishers == 1 && ts.Viewers == 1
		}, "the viewer never joined")
		msg := make([]byte, 1_000_000)
		for range 40 {
			_ = pub.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := pub.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				t.Fatal(err)
			}
		}
		if n >= limit {
			// The relay has read all but what the socket buffers hold;
			// the write deadline (10 s) has not passed.
			if ts, _ := topicStats(t, r.proc, "out/q"); ts.DroppedViewers != 0 || ts.Viewers != 1 {
				t.Fatalf("a stalled viewer was dropped after 40 MB with a queue of %s: %+v", v, ts)
			}
			return
		}
		testutil.Eventually(t, 15*time.Second, func() bool {
			ts, _ := topicStats(t, r.proc, "out/q")
			return ts.DroppedViewers == 1
		}, "a stalled viewer was not dropped with a queue of %s", v)
		// Reading again, it gets what the socket held, then why.
		_ = stalled.SetReadDeadline(time.Now().Add(20 * time.Second))
		var err error
		for err == nil {
			_, _, err = stalled.ReadMessage()
		}
		var ce *websocket.CloseError
		want := "too slow: fell " + v + " messages behind"
		if unit == "bytes" {
			want = "B behind"
		}
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, want) {
			t.Fatalf("the dropped viewer read %v, want close 1008 %q", err, want)
		}
	}
}

// dialRaw opens a websocket that nobody reads, closed when the test ends.
func dialRaw(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// maxMessage checks that a message of v bytes is relayed and one of v+1
// closes the publisher with 1009.
func maxMessage(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	n, _ := strconv.Atoi(v)
	pub := dialRaw(t, "ws://"+r.addr+"/in/m")
	view := dialWS(t, "ws://"+r.addr+"/out/m", nil)
	testutil.Eventually(t, 10*time.Second, func() bool {
		ts, ok := topicStats(t, r.proc, "out/m")
		return ok && ts.Publishers == 1 && ts.Viewers == 1
	}, "the viewer never joined")
	for _, size := range []int{n, n + 1} {
		if err := pub.WriteMessage(websocket.BinaryMessage, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	if m := view.next(t, 10*time.Second); len(m.data) != n {
		t.Fatalf("the viewer got %d bytes, want %d", len(m.data), n)
	}
	_ = pub.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := pub.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("after %d bytes the publisher read %v, want close 1009", n+1, err)
	}
}

func maxViewers(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	n, _ := strconv.Atoi(v)
	for range n {
		dialWS(t, "ws://"+r.addr+"/out/v", nil)
	}
	if got := dialStatus(t, "ws://"+r.addr+"/out/v", ""); got != http.StatusServiceUnavailable {
		t.Fatalf("viewer %d of a topic with at most %d: %d, want 503", n+1, n, got)
	}
}

func maxConnsPerAddr(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	n, _ := strconv.Atoi(v)
	for i := range n {
		dialWS(t, "ws://"+r.addr+"/out/c"+strconv.Itoa(i), nil)
	}
	if got := dialStatus(t, "ws://"+r.addr+"/out/c", ""); got != http.StatusTooManyRequests {
		t.Fatalf("connection %d from one address with at most %d: %d, want 429", n+1, n, got)
	}
}
