package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	secret      = []byte("test-secret-for-the-vw-relay-012") // 32 bytes
	otherSecret = []byte("another-secret-for-a-vw-relay-98")
	epoch       = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
)

// clock is the time every Auth in a test reads, moved by the test instead of
// sleeping.
type clock = testutil.Clock

func newClock() *clock { return testutil.NewClock(epoch) }

// relay is the real relay (crossbar) with an Auth of the test's config on
// a loopback port, so that every handshake, access and deny case here runs
// against what users run: there is no stand-in to drift from it. hooks
// hears every Denial through OnDeny, beside the relay's own hook.
type relay struct {
	a     *auth.Auth
	clock *clock
	rl    *crossbar.Server
	srv   *httptest.Server
	hooks chan auth.Denial
}

func newRelay(t testing.TB, cfg auth.Config, useTLS bool) *relay {
	t.Helper()
	r := &relay{clock: newClock(), hooks: make(chan auth.Denial, 16)}
	if cfg.Now == nil {
		cfg.Now = r.clock.Now
	}
	a, err := auth.New(cfg, testutil.Log(t))
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	r.a = a
	remove := a.OnDeny(func(d auth.Denial) {
		select {
		case r.hooks <- d:
		default:
		}
	})
	if r.rl, err = crossbar.New(crossbar.Config{Auth: a, Now: r.clock.Now}, hub.New(), testutil.Log(t)); err != nil {
		t.Fatal(err)
	}
	if useTLS {
		r.srv = httptest.NewTLSServer(r.rl.Handler())
	} else {
		r.srv = httptest.NewServer(r.rl.Handler())
	}
	t.Cleanup(func() {
		remove()
		r.rl.Close()
		r.srv.Close()
	})
	return r
}

// onPath returns the relay's clients that connected on path.
func (r *relay) onPath(path string) []crossbar.ClientStats {
	var out []crossbar.ClientStats
	for _, ts := range r.rl.Stats().Topics {
		for _, c := range ts.Clients {
			if c.Path == path {
				out = append(out, c)
			}
		}
	}
	return out
}

// contract is what the README promises a route means: /in/{x} publishes
// to the topic /out/{x}, /out/{x} watches it, any other path is
// bidirectional. It is written out here, not asked of auth, so that the
// relay is held to the promise rather than to the code.
func contract(path string) (crossbar.Role, string) {
	if x, ok := strings.CutPrefix(path, "/in/"); ok {
		return crossbar.Publisher, "/out/" + x
	}
	if strings.HasPrefix(path, "/out/") {
		return crossbar.Viewer, path
	}
	return crossbar.Peer, path
}
func (r *relay) wsURL(route string) string {
	return "ws" + strings.TrimPrefix(r.srv.URL, "http") + route
}

func (r *relay) dialer() *websocket.Dialer {
	d := &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if tr, ok := r.srv.Client().Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		d.TLSClientConfig = tr.TLSClientConfig.Clone()
	}
	return d
}

// dial opens a websocket to url. On success the relay must list the
// client on url's path in the role and topic the route promises, and dial
// returns the connection with status 101; on refusal it returns the status
// and the JSON reason, failing the test if the body is not {"error":"…"} or
// if the relay kept a client of the refused handshake.
func (r *relay) dial(t testing.TB, rawURL string, hdr http.Header) (*websocket.Conn, int, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	before := len(r.onPath(u.Path))
	c, resp, err := r.dialer().Dial(rawURL, hdr)
	if err == nil {
		t.Cleanup(func() { c.Close() })
		// The relay admits a client before it upgrades the connection.
		role, topic := contract(u.Path)
		got := r.onPath(u.Path)
		if len(got) == 0 {
			t.Fatalf("dial %s: upgraded, but the relay lists no client on the path", rawURL)
		}
		for _, cs := range got {
			if cs.Role != role || cs.Topic != topic {
				t.Fatalf("dial %s: the relay has a %s on %s, want a %s on %s", rawURL, cs.Role, cs.Topic, role, topic)
			}
		}
		return c, http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	if n := len(r.onPath(u.Path)); n > before {
		t.Fatalf("dial %s: refused, but the relay lists %d clients on the path, had %d", rawURL, n, before)
	}
	return nil, resp.StatusCode, jsonError(t, resp)
}

func jsonError(t testing.TB, resp *http.Response) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("refusal has Content-Type %q, want application/json", ct)
	}
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("refusal body %q is not {\"error\":\"…\"}: %v", body, err)
	}
	if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("401 without WWW-Authenticate")
	}
	return e.Error
}

// access calls POST /access{route} and returns the status and the JSON body.
func (r *relay) access(t *testing.T, method, route string, hdr http.Header) (int, map[string]string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+auth.AccessPrefix+route, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("access %s: %v", route, err)
	}
	defer resp.Body.Close()
	body := map[string]string{}
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("access %s: body %q: %v", route, b, err)
		}
	}
	return resp.StatusCode, body, resp.Header
}

// code gets a one-time code for route with tok and returns the URI.
func (r *relay) code(t *testing.T, route, tok string) string {
	t.Helper()
	st, body, _ := r.access(t, http.MethodPost, route, bearerHdr(tok))
	if st != http.StatusOK || !strings.Contains(body["uri"], "code=") {
		t.Fatalf("access %s: %d %v", route, st, body)
	}
	return body["uri"]
}

// deny posts body to /api/deny with tok.
func (r *relay) deny(t *testing.T, tok, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+auth.DenyPath, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("deny: body: %v", err)
	}
	return resp.StatusCode, out
}

func bearerHdr(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}}
}

func mint(t testing.TB, a *auth.Auth, path, scopes string, ttl time.Duration) string {
	t.Helper()
	tok, err := a.Mint(path, strings.Split(scopes, ","), ttl)
	if err != nil {
		t.Fatalf("Mint(%q, %q, %v): %v", path, scopes, ttl, err)
	}
	return tok
}
