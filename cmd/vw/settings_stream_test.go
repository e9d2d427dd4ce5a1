package main

// The checks of settings that see what a running vw stream does with a
// setting's value (and logsAt, which both commands share).

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
)

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
	if !strings.HasSuffix(r.addr, ":"+v) {
		t.Fatalf("listens at %s, want port %s", r.addr, v)
	}
	if status, _ := httpDo(t, "GET", r.baseURL+"/healthcheck", ""); status != 200 {
		t.Fatalf("healthcheck at %s: %d", r.baseURL, status)
	}
}

// maxDelayIs checks the bound on a destination's delay that vw stream says
// it runs with.
func maxDelayIs(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	if !strings.Contains(r.logText(), "max_delay="+v) {
		t.Fatalf("VW_MAX_DELAY %s: the listening line says otherwise:\n%s", v, r.logText())
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

// logsAs checks that every line r logged is a JSON object (v "json") or
// logfmt text (v "text").
func logsAs(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	out := r.logText()
	for _, l := range lines(out) {
		if json := strings.HasPrefix(l, "{") && strings.HasSuffix(l, "}"); json != (v == "json") || !json && !strings.HasPrefix(l, "time=") {
			t.Fatalf("log format %s, but a line reads %q", v, l)
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
