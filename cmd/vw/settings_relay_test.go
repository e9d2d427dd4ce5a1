package main

// The checks of settings that see what a running vw relay does with a
// setting's value.

import (
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// mintWith mints an hour's token for path and scope with cfg's secret and
// audience, as vw token does.
func mintWith(t *testing.T, cfg auth.Config, path, scope string) string {
	t.Helper()
	a, err := auth.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Mint(path, []string{scope}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
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
		tok := mintWith(t, auth.Config{Secret: tc.secret, Audience: tc.audience}, "lab1/", auth.ScopeRead)
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

// certPairs are two certificates with their keys, A and B, from one CA:
// the values of a row for a certificate or a key setting.
type certPairs struct {
	ca                       *testutil.CA
	certA, keyA, certB, keyB string
}

// newCertPairs makes a CA named caName and has it issue both pairs, for
// servers or, if peer, for cluster peers (servers and clients).
func newCertPairs(t *testing.T, caName string, peer bool) *certPairs {
	dir := t.TempDir()
	p := &certPairs{ca: testutil.NewCA(t, dir, caName)}
	issue := p.ca.Server
	if peer {
		issue = p.ca.Peer
	}
	p.certA, p.keyA = issue(t, dir)
	p.certB, p.keyB = issue(t, dir)
	return p
}

// checkPair checks a run given v, A's certificate or key, with A's other
// half: nothing (half a pair) refuses to start saying half, B's half (a
// pair that does not match) refuses saying mismatch, and A's own runs as
// works checks.
func (p *certPairs) checkPair(t *testing.T, r *vwRun, v, half, mismatch string, works func()) {
	t.Helper()
	switch v {
	case "":
		refused(t, r, half)
	case p.certB, p.keyB:
		refused(t, r, mismatch)
	default:
		works()
	}
}

// newTLSPair is two server certificates for the relay's TLS rows.
func newTLSPair(t *testing.T) *certPairs {
	return newCertPairs(t, "ca", false)
}

// servesA checks that the run given A's pair serves HTTPS (see checkPair).
func (p *certPairs) servesA(t *testing.T, r *vwRun, v string) {
	t.Helper()
	p.checkPair(t, r, v, "TLS needs both VW_RELAY_TLS_CERT and VW_RELAY_TLS_KEY", "TLS: tls: private key does not match public key", func() {
		running(t, r)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool()}}}
		if got := testutil.Do(t, testutil.Req{URL: "https://" + r.addr + "/healthcheck", Client: c}); got.Status != 200 {
			t.Fatalf("https healthcheck: %d", got.Status)
		}
	})
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
		pub := testutil.Dial(t, "ws://"+r.addr+"/in/q", nil)
		stalled := testutil.Dial(t, "ws://"+r.addr+"/out/q", nil)
		testutil.Eventually(t, 10*time.Second, func() bool {
			ts, ok := topicStats(t, r.proc, "out/q")
			return ok && ts.Publishers == 1 && ts.Viewers == 1
		}, "the viewer never joined")
		dropped := func() bool {
			ts, _ := topicStats(t, r.proc, "out/q")
			return ts.DroppedViewers == 1
		}
		// Up to 40 MB, stopping at the drop: the relay's close frame waits
		// a second for the viewer to read its way to it.
		msg := make([]byte, 1_000_000)
		for sent := 0; sent < 40 && !dropped(); sent++ {
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
		testutil.Eventually(t, 15*time.Second, dropped, "a stalled viewer was not dropped with a queue of %s", v)
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

// maxMessage checks that a message of v bytes is relayed and one of v+1
// closes the publisher with 1009.
func maxMessage(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	n, _ := strconv.Atoi(v)
	pub := testutil.Dial(t, "ws://"+r.addr+"/in/m", nil)
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

// capped returns a check that v websocket connections to prefix+i
// (distinct topics if distinct, else prefix alone) from this address are
// taken and the next is refused with status.
func capped(prefix string, distinct bool, status int) func(t *testing.T, r *vwRun, v string) {
	return func(t *testing.T, r *vwRun, v string) {
		t.Helper()
		running(t, r)
		n, _ := strconv.Atoi(v)
		path := func(i int) string {
			if distinct {
				return prefix + strconv.Itoa(i)
			}
			return prefix
		}
		for i := range n {
			dialWS(t, "ws://"+r.addr+path(i), nil)
		}
		if got := dialStatus(t, "ws://"+r.addr+path(n), ""); got != status {
			t.Fatalf("connection %d to %s with at most %d: %d, want %d", n+1, path(n), n, got, status)
		}
	}
}

func maxConnsPerToken(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	n, _ := strconv.Atoi(v)
	tok := mintWith(t, auth.Config{Secret: []byte(secretA)}, "lab1/", auth.ScopeRead)
	for i := range n {
		dialWS(t, "ws://"+r.addr+"/out/lab1/c"+strconv.Itoa(i), http.Header{"Authorization": {"Bearer " + tok}})
	}
	if got := dialStatus(t, "ws://"+r.addr+"/out/lab1/c", tok); got != http.StatusTooManyRequests {
		t.Fatalf("connection %d with one token, at most %d: %d, want 429", n+1, n, got)
	}
}

// trustsProxy checks that X-Forwarded-For names the client in /stats only
// when v covers this test's address (127.0.0.1).
func trustsProxy(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	dialWS(t, "ws://"+r.addr+"/out/p", http.Header{"X-Forwarded-For": {"203.0.113.7"}})
	want := "127.0.0.1"
	if v == "127.0.0.1" {
		want = "203.0.113.7"
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		ts, ok := topicStats(t, r.proc, "out/p")
		return ok && len(ts.Clients) == 1 && strings.HasPrefix(ts.Clients[0].Remote, want)
	}, "/stats does not give the viewer's address as %s (trusted proxies %q)", want, v)
}

// metricsTopics checks that /metrics names v streams one by one and sums
// the rest under topic="other", with v+1 live.
func metricsTopics(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	n, _ := strconv.Atoi(v)
	for i := range n + 1 {
		testutil.Dial(t, "ws://"+r.addr+"/in/m"+strconv.Itoa(i), nil)
	}
	label := regexp.MustCompile(`topic="([^"]+)"`)
	var named map[string]bool
	testutil.Eventually(t, 10*time.Second, func() bool {
		named = map[string]bool{}
		for _, m := range label.FindAllStringSubmatch(testutil.Do(t, testutil.Req{URL: r.baseURL + "/metrics"}).Body, -1) {
			named[m[1]] = true
		}
		return named["other"] && len(named) == n+1
	}, "/metrics with %d live streams names %v; want %d and \"other\"", n+1, named, n)
}

// deniesInto checks that a deny is saved to the file v.
func deniesInto(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	admin := mintWith(t, auth.Config{Secret: []byte(secretA)}, "/", auth.ScopeAdmin)
	resp := testutil.Do(t, testutil.Req{Method: http.MethodPost, URL: r.baseURL + auth.DenyPath, Body: `{"jti":"tok-1234"}`, Token: admin})
	if resp.Status != http.StatusOK {
		t.Fatalf("deny: %d %s", resp.Status, resp.Body)
	}
	if b, err := os.ReadFile(v); err != nil || !strings.Contains(string(b), "tok-1234") {
		t.Fatalf("the deny list in %s: %v %q", v, err, b)
	}
}

// cachesGOP checks that a stream's keyframe cache keeps a GOP of about
// 24 KB (a keyframe and eight pictures) when v leaves room for it, and
// keeps only the PAT/PMT otherwise.
func cachesGOP(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	n, _ := strconv.Atoi(v)
	pub := testutil.Dial(t, "ws://"+r.addr+"/in/k", nil)
	s := tscheck.NewSynth(true, 90000)
	gop := s.Append(nil, 9)
	for i := 0; i < len(gop); i += 7 * ts.PacketSize {
		_ = pub.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := pub.WriteMessage(websocket.BinaryMessage, gop[i:min(i+7*ts.PacketSize, len(gop))]); err != nil {
			t.Fatal(err)
		}
	}
	var st crossbar.TopicReport
	testutil.Eventually(t, 10*time.Second, func() bool {
		st, _ = topicStats(t, r.proc, "out/k")
		return st.BytesIn == uint64(len(gop))
	}, "the relay did not take the GOP in")
	fits := n >= 2*len(gop)
	if cached := st.KeyframeAgeMs != nil; cached != fits || st.CacheBytes > uint64(n) {
		t.Fatalf("a %d-byte GOP with a %s-byte cache: cached %v (%d bytes), want %v", len(gop), v, cached, st.CacheBytes, fits)
	}
}

// relayMaxDelayIs checks the bound on a viewer's delay that vw relay says
// it runs with (crossbar's tests show what the bound does).
func relayMaxDelayIs(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	if !strings.Contains(r.logText(), "max_delay="+v) {
		t.Fatalf("VW_RELAY_MAX_DELAY %s: the listening line says otherwise:\n%s", v, r.logText())
	}
}
