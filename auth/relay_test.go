package auth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/vwlab/vw/auth"
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
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: epoch} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// relay is the smallest real relay front door: it serves the access point
// and the deny route, and for every other path calls Authorize before a
// gorilla/websocket upgrade, as crossbar does. An upgraded connection gets
// one text message "ok <route>" and is then held open until the client
// leaves or its token id is denied (closed with 1008 "token denied").
type relay struct {
	a     *auth.Auth
	clock *clock
	srv   *httptest.Server
	hooks chan auth.Denial // reported by OnDeny

	mu     sync.Mutex
	conns  map[*websocket.Conn]*auth.Grant
	closed bool
	wg     sync.WaitGroup
}

func newRelay(t *testing.T, cfg auth.Config, useTLS bool) *relay {
	t.Helper()
	r := &relay{clock: newClock(), conns: map[*websocket.Conn]*auth.Grant{}, hooks: make(chan auth.Denial, 16)}
	if cfg.Now == nil {
		cfg.Now = r.clock.Now
	}
	a, err := auth.New(cfg, testutil.Log(t))
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	r.a = a
	remove := a.OnDeny(r.closeDenied)
	if useTLS {
		r.srv = httptest.NewTLSServer(r)
	} else {
		r.srv = httptest.NewServer(r)
	}
	t.Cleanup(func() {
		remove()
		r.srv.Close()
		r.mu.Lock()
		r.closed = true
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch {
	case strings.HasPrefix(req.URL.Path, auth.AccessPrefix+"/"):
		r.a.AccessHandler().ServeHTTP(w, req)
	case req.URL.Path == auth.DenyPath:
		r.a.DenyHandler().ServeHTTP(w, req)
	default:
		r.handshake(w, req)
	}
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (r *relay) handshake(w http.ResponseWriter, req *http.Request) {
	g, err := r.a.Authorize(req)
	if err != nil {
		auth.WriteError(w, err)
		return
	}
	c, err := upgrader.Upgrade(w, req, nil)
	if err != nil {
		return
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		c.Close()
		return
	}
	r.conns[c] = g
	r.wg.Add(1)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		c.Close()
		r.wg.Done()
	}()
	// A deny between Authorize and the registration above would otherwise
	// go unnoticed: OnDeny ran before this connection was in the map.
	if g.ID != "" && r.a.Denied(g.ID, g.Path) {
		return
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("ok "+g.Route)); err != nil {
		return
	}
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// closeDenied is the OnDeny hook: close every live connection the entry
// refuses.
func (r *relay) closeDenied(d auth.Denial) {
	select {
	case r.hooks <- d:
	default:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for c, g := range r.conns {
		if d.Refuses(g.ID, g.Path) {
			msg := websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "token denied")
			_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			c.Close()
		}
	}
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

// dial opens a websocket to url. On success it reads the relay's greeting and
// returns the connection with status 101; on refusal it returns the status
// and the JSON reason, failing the test if the body is not {"error":"…"}.
func (r *relay) dial(t *testing.T, url string, hdr http.Header) (*websocket.Conn, int, string) {
	t.Helper()
	c, resp, err := r.dialer().Dial(url, hdr)
	if err == nil {
		t.Cleanup(func() { c.Close() })
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		typ, msg, err := c.ReadMessage()
		if err != nil || typ != websocket.TextMessage || !strings.HasPrefix(string(msg), "ok /") {
			t.Fatalf("dial %s: upgraded but no greeting: %q %v", url, msg, err)
		}
		return c, http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return nil, resp.StatusCode, jsonError(t, resp)
}

func jsonError(t *testing.T, resp *http.Response) string {
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

func mint(t *testing.T, a *auth.Auth, path, scopes string, ttl time.Duration) string {
	t.Helper()
	tok, err := a.Mint(path, strings.Split(scopes, ","), ttl)
	if err != nil {
		t.Fatalf("Mint(%q, %q, %v): %v", path, scopes, ttl, err)
	}
	return tok
}
