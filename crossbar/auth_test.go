package crossbar

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/internal/testutil"
)

var secret = []byte("test-secret-for-the-vw-relay-012") // 32 bytes, the least HS256 takes

// clock is the time a test's Auth (and relay) read, moved by the test
// instead of sleeping.
type clock = testutil.Clock

func newClock() *clock { return testutil.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

// authRelay is a relay with auth on: secret, "demo/" public, a test clock.
type authRelay struct {
	*relay
	auth  *auth.Auth
	clock *clock
}

func startAuthRelay(t testing.TB, cfg Config) *authRelay {
	t.Helper()
	clk := newClock()
	a, err := auth.New(auth.Config{Secret: secret, Public: []string{"demo/"}, Now: clk.Now}, testutil.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = a
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	return &authRelay{relay: startRelay(t, cfg), auth: a, clock: clk}
}

// mint signs a token for path and comma-separated scopes, valid for a day.
func (r *authRelay) mint(t testing.TB, path, scopes string) string {
	t.Helper()
	return mintWith(t, r.auth, path, scopes, 24*time.Hour)
}

func mintWith(t testing.TB, a *auth.Auth, path, scopes string, ttl time.Duration) string {
	t.Helper()
	tok, err := a.Mint(path, strings.Split(scopes, ","), ttl)
	if err != nil {
		t.Fatalf("Mint(%q, %q): %v", path, scopes, err)
	}
	return tok
}

// jti reads a token's id (the payload is not checked here: the relay does).
func jti(t testing.TB, tok string) string {
	t.Helper()
	var c auth.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func bearer(tok string) http.Header {
	if tok == "" {
		return nil
	}
	return http.Header{"Authorization": {"Bearer " + tok}}
}

// dialWith opens a websocket to a path or a whole ws:// URL with headers.
func (r *relay) dialWith(t testing.TB, pathOrURL string, hdr http.Header) *websocket.Conn {
	t.Helper()
	u := pathOrURL
	if strings.HasPrefix(u, "/") {
		u = r.ws + u
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(u, hdr)
	if err != nil {
		detail := ""
		if resp != nil {
			var e struct{ Error string }
			_ = json.NewDecoder(resp.Body).Decode(&e)
			detail = fmt.Sprintf(" (%d %s)", resp.StatusCode, e.Error)
		}
		t.Fatalf("dial %s: %v%s", pathOrURL, err, detail)
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// publish connects a publisher to /in/{stream} with a write token for the
// stream's lab (lab1/ for lab1/cam).
func (r *authRelay) publish(t testing.TB, stream string) *websocket.Conn {
	t.Helper()
	lab, _, _ := strings.Cut(stream, "/")
	return r.dialWith(t, "/in/"+stream, bearer(r.mint(t, lab+"/", "write")))
}

// publishing publishes each stream and waits until the relay has it.
func (r *authRelay) publishing(t testing.TB, streams ...string) {
	t.Helper()
	for _, s := range streams {
		r.publish(t, s)
		r.waitClients(t, "/out/"+s, 1, 0, 0)
	}
}

// refusal is what the relay answered a handshake it refused.
type refusal struct {
	status int
	reason string
	header http.Header
}

// handshakeWith sends a websocket handshake to a path (with its query) with
// headers, as a real client would, and returns the refusal; it fails the
// test if the relay upgraded the connection or did not answer JSON.
func (r *relay) handshakeWith(t testing.TB, pathQuery string, hdr http.Header) refusal {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(r.ws+pathQuery, hdr)
	if err == nil {
		_ = c.Close()
		t.Fatalf("handshake %s: upgraded, want a refusal", pathQuery)
	}
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
		t.Fatalf("handshake %s: %v, want a refused handshake", pathQuery, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("handshake %s: refusal with Content-Type %q, want application/json", pathQuery, ct)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" {
		t.Fatalf("handshake %s: refusal body is not {\"error\":\"…\"}: %v", pathQuery, err)
	}
	return refusal{resp.StatusCode, e.Error, resp.Header}
}

// TestAuthRefusals checks the relay's side of a refusal: auth's (each one
// is tested once, in auth's TestHandshake, against this relay) and the
// relay's own limit are answered at the handshake with the status, a JSON
// reason and, for a 401, WWW-Authenticate, and no client got in.
func TestAuthRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		path   string
		cred   func(t *testing.T, r *authRelay) http.Header
		status int
		reason string
	}{
		{
			name: "no token", path: "/out/lab1/cam", status: 401, reason: "missing credentials",
			cred: func(*testing.T, *authRelay) http.Header { return nil },
		},
		{
			name: "lab1 token watching lab2", path: "/out/lab2/cam", status: 403, reason: "does not cover",
			cred: func(t *testing.T, r *authRelay) http.Header { return bearer(r.mint(t, "lab1/", "read")) },
		},
		{
			name: "unclean path", path: "/out/lab1/../lab2/cam", status: 400, reason: `".." segment`,
			cred: func(t *testing.T, r *authRelay) http.Header { return bearer(r.mint(t, "/", "read")) },
		},
		{
			name: "viewer over the cap", cfg: Config{MaxViewers: 1}, path: "/out/lab1/cam", status: 503, reason: "viewers",
			cred: func(t *testing.T, r *authRelay) http.Header {
				tok := r.mint(t, "lab1/", "read")
				r.dialWith(t, "/out/lab1/cam", bearer(tok))
				r.waitClients(t, "/out/lab1/cam", 0, 1, 0)
				return bearer(tok)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startAuthRelay(t, tc.cfg)
			hdr := tc.cred(t, r)
			before := r.clientCount()
			got := r.handshakeWith(t, tc.path, hdr)
			if got.status != tc.status || !strings.Contains(got.reason, tc.reason) {
				t.Fatalf("%s: %d %q, want %d and a reason with %q", tc.path, got.status, got.reason, tc.status, tc.reason)
			}
			if got.status == http.StatusUnauthorized && got.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if n := r.clientCount(); n != before {
				t.Fatalf("the relay has %d clients after the refusal, had %d", n, before)
			}
		})
	}
}

// clientCount counts the relay's clients on every topic.
func (r *relay) clientCount() int {
	n := 0
	for _, ts := range r.Stats().Topics {
		n += len(ts.Clients)
	}
	return n
}

// TestAuthGoodTokens checks that every right credential gets in and that
// data flows: bearer tokens for programs, codes from the access point for
// browsers, a public prefix without any, and the control route with both
// scopes.
func TestAuthGoodTokens(t *testing.T) {
	r := startAuthRelay(t, Config{})
	host := r.mint(t, "lab1/", "write")
	viewer := r.mint(t, "lab1/", "read")
	operator := r.mint(t, "lab1/", "read,write")
	everything := r.mint(t, "/", "read,write")

	pub := r.dialWith(t, "/in/lab1/cam", bearer(host))
	viewers := []*websocket.Conn{
		r.dialWith(t, "/out/lab1/cam", bearer(viewer)),
		r.dialWith(t, "/out/lab1/cam", bearer(everything)),
		r.dialWith(t, r.code(t, "/out/lab1/cam", viewer), nil),
		r.dialWith(t, r.code(t, "/out/lab1/cam", operator), nil),
	}
	r.waitClients(t, "/out/lab1/cam", 1, len(viewers), 0)
	send(t, pub, bin, []byte("private video"))
	for i, v := range viewers {
		if _, b := read(t, v); string(b) != "private video" {
			t.Fatalf("viewer %d got %q", i, b)
		}
	}
	// The stats name each client's token id, for an admin to deny.
	if id := r.clientOf(t, viewers[0]).TokenID; id != jti(t, viewer) {
		t.Errorf("the stats give token id %q, want %q", id, jti(t, viewer))
	}

	// A public prefix: watched with no token at all, directly or through
	// the access point (which answers a URI without a code).
	demoPub := r.publish(t, "demo/cam")
	st, uri := r.access(t, "/out/demo/cam", "")
	if st != http.StatusOK || strings.Contains(uri, "code=") || !strings.HasSuffix(uri, "/out/demo/cam") {
		t.Fatalf("access to a public stream: %d %q, want a URI without a code", st, uri)
	}
	public := []*websocket.Conn{r.dialWith(t, "/out/demo/cam", nil), r.dialWith(t, uri, nil)}
	r.waitClients(t, "/out/demo/cam", 1, 2, 0)
	send(t, demoPub, bin, []byte("public video"))
	for i, v := range public {
		if _, b := read(t, v); string(b) != "public video" {
			t.Fatalf("public viewer %d got %q", i, b)
		}
		if cs := r.clientOf(t, v); cs.TokenID != "" {
			t.Errorf("an anonymous viewer has token id %q", cs.TokenID)
		}
	}

	// The control route: the lab host (vw stream's apiRule) and an
	// operator, each with read and write.
	apiHost := r.dialWith(t, "/bi/lab1/api", bearer(operator))
	op := r.dialWith(t, "/bi/lab1/api", bearer(everything))
	r.waitClients(t, "/bi/lab1/api", 0, 0, 2)
	send(t, op, text, []byte(`{"verb":"healthcheck"}`))
	if _, b := read(t, apiHost); string(b) != `{"verb":"healthcheck"}` {
		t.Fatalf("the host got %q", b)
	}
	send(t, apiHost, text, []byte(`{"healthcheck":"ok"}`))
	if _, b := read(t, op); string(b) != `{"healthcheck":"ok"}` {
		t.Fatalf("the operator got %q", b)
	}
}

// TestDenyClosesLiveConnections revokes a token with live connections: they
// close within a second with 1008 "token revoked", everything else carries
// on, and the token gets no new connection or code.
func TestDenyClosesLiveConnections(t *testing.T) {
	r := startAuthRelay(t, Config{})
	revoked := r.mint(t, "lab1/", "read,write")
	kept := r.mint(t, "lab1/", "read")
	admin := r.mint(t, "/", "admin")

	pub := r.dialWith(t, "/in/lab1/cam", bearer(revoked))
	v1 := r.dialWith(t, "/out/lab1/cam", bearer(revoked))
	v2 := r.dialWith(t, r.code(t, "/out/lab1/cam", revoked), nil)
	other := r.dialWith(t, "/out/lab1/cam", bearer(kept))
	r.waitClients(t, "/out/lab1/cam", 1, 3, 0)

	for _, tc := range []struct {
		name, tok string
		status    int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"not admin", kept, http.StatusForbidden},
	} {
		if st := r.deny(t, tc.tok, jti(t, revoked)); st != tc.status {
			t.Fatalf("deny with %s: %d, want %d", tc.name, st, tc.status)
		}
	}
	if n := r.topic("/out/lab1/cam").Viewers; n != 3 {
		t.Fatalf("a refused deny closed connections: %d viewers left", n)
	}

	if st := r.deny(t, admin, jti(t, revoked)); st != http.StatusOK {
		t.Fatalf("deny: %d", st)
	}
	deadline := time.Now().Add(time.Second)
	for i, c := range []*websocket.Conn{pub, v1, v2} {
		_ = c.SetReadDeadline(deadline)
		var err error
		for err == nil {
			_, _, err = c.ReadMessage()
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || ce.Text != "token revoked" {
			t.Fatalf("connection %d of the denied token read %v within a second, want close 1008 \"token revoked\"", i, err)
		}
	}
	r.waitClients(t, "/out/lab1/cam", 0, 1, 0)
	if d := r.topic("/out/lab1/cam").Drops; len(d) != 1 || d["token_revoked"] != 3 {
		t.Fatalf("/stats: drops %v, want 3 revoked", d)
	}
	if got := r.handshakeWith(t, "/out/lab1/cam", bearer(revoked)); got.status != http.StatusUnauthorized {
		t.Fatalf("the denied token dialled again: %d %q, want 401", got.status, got.reason)
	}
	if st, reason := r.access(t, "/out/lab1/cam", revoked); st != http.StatusUnauthorized {
		t.Fatalf("the denied token asked for a code: %d %q, want 401", st, reason)
	}
	// The other token's viewer carries on, and a new publisher reaches it.
	pub2 := r.publish(t, "lab1/cam")
	r.waitClients(t, "/out/lab1/cam", 1, 1, 0)
	send(t, pub2, bin, []byte("after"))
	if _, b := read(t, other); string(b) != "after" {
		t.Fatalf("the other viewer got %q", b)
	}
}

// TestDenyDuringHandshake denies a token in the window between Authorize
// and the connection's registration, where the deny hook cannot see it yet:
// the relay still refuses it, with 401, before the upgrade.
func TestDenyDuringHandshake(t *testing.T) {
	r := startAuthRelay(t, Config{})
	tok := r.mint(t, "lab1/", "read")
	hook := func(g *auth.Grant) {
		if _, err := r.auth.Deny(g.ID, g.Path, g.Expires); err != nil {
			t.Error(err)
		}
	}
	r.beforeAdmit.Store(&hook)
	got := r.handshakeWith(t, "/out/lab1/cam", bearer(tok))
	if got.status != http.StatusUnauthorized || !strings.Contains(got.reason, "denied") {
		t.Fatalf("%d %q, want 401 token id denied", got.status, got.reason)
	}
	if n := r.clientCount(); n != 0 {
		t.Fatalf("%d clients left, want none", n)
	}
}

// TestExpiredTokenClosesConnection moves the clock past a live connection's
// token expiry: the relay closes it at its next ping with 1008 "token
// expired".
func TestExpiredTokenClosesConnection(t *testing.T) {
	// Clients answer pings only once their reads start: two intervals
	// must cover that on a busy machine.
	r := startAuthRelay(t, Config{PingInterval: 500 * time.Millisecond})
	short := mintWith(t, r.auth, "lab1/", "read", time.Hour)
	long := r.mint(t, "lab1/", "read")
	expiring := r.dialWith(t, "/out/lab1/cam", bearer(short))
	lasting := r.dialWith(t, "/out/lab1/cam", bearer(long))
	r.waitClients(t, "/out/lab1/cam", 0, 2, 0)
	// Answer pings on the lasting one (gorilla does, inside ReadMessage).
	done := make(chan error, 1)
	go func() {
		_, _, err := lasting.ReadMessage()
		done <- err
	}()

	r.clock.Advance(time.Hour + auth.Leeway + time.Second)
	_ = expiring.SetReadDeadline(time.Now().Add(5 * time.Second))
	var err error
	for err == nil {
		_, _, err = expiring.ReadMessage()
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || ce.Text != "token expired" {
		t.Fatalf("the expired token's connection read %v, want close 1008 \"token expired\"", err)
	}
	r.waitClients(t, "/out/lab1/cam", 0, 1, 0)
	if d := r.topic("/out/lab1/cam").Drops; len(d) != 1 || d["token_expired"] != 1 {
		t.Fatalf("/stats: drops %v, want one expired", d)
	}
	_ = lasting.Close()
	<-done
}

// TestStatsAndIndexWithAuth: with auth on, /stats is for admins (it names
// private streams, client addresses and token ids) and the index lists only
// streams anyone may watch; /healthcheck answers everyone.
func TestStatsAndIndexWithAuth(t *testing.T) {
	r := startAuthRelay(t, Config{})
	r.publishing(t, "lab1/cam", "demo/cam")

	for _, tc := range []struct {
		name, tok string
		status    int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"garbage", "x.y.z", http.StatusUnauthorized},
		{"read and write", r.mint(t, "/", "read,write"), http.StatusForbidden},
		{"admin", r.mint(t, "/", "admin"), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := testutil.Do(t, testutil.Req{URL: r.http.URL + "/stats", Token: tc.tok})
			if resp.Status != tc.status {
				t.Fatalf("GET /stats: %d, want %d", resp.Status, tc.status)
			}
			if tc.status != http.StatusOK {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(resp.Body), &e); err != nil || e.Error == "" {
					t.Fatalf("refusal body: %v", err)
				}
				return
			}
			var st Stats
			if err := json.Unmarshal([]byte(resp.Body), &st); err != nil || len(st.Topics) != 2 {
				t.Fatalf("stats %+v %v, want both streams", st, err)
			}
		})
	}

	index := getBody(t, r.http.URL+"/")
	if !strings.Contains(index, `href="/play/demo/cam"`) || strings.Contains(index, "lab1") {
		t.Fatalf("the index should list demo/cam and not the private lab1/cam:\n%s", index)
	}
	if body := getBody(t, r.http.URL+"/healthcheck"); body != "\"ok\"\n" {
		t.Fatalf("/healthcheck: %q", body)
	}
}

func TestHealthcheck(t *testing.T) {
	r := startRelay(t, Config{})
	resp := getJSON(t, r.http.URL+"/healthcheck", "", nil)
	var v string
	getJSON(t, r.http.URL+"/healthcheck", "", &v)
	if resp.Status != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || v != "ok" {
		t.Fatalf("/healthcheck: %d %s %q, want 200 application/json \"ok\"", resp.Status, resp.Header.Get("Content-Type"), v)
	}
}

// TestOpenRelayAccessPoint: with no Auth (open), the access point answers
// a URI without a code, so the player's flow is the same, and /api/deny
// says there is nothing to deny.
func TestOpenRelayAccessPoint(t *testing.T) {
	r := startRelay(t, Config{})
	st, uri := r.access(t, "/out/lab1/cam", "")
	if st != http.StatusOK || uri != r.ws+"/out/lab1/cam" {
		t.Fatalf("access: %d %q, want %s", st, uri, r.ws+"/out/lab1/cam")
	}
	r.dialWith(t, uri, nil)
	if st := r.deny(t, "", "x"); st != http.StatusNotFound {
		t.Fatalf("deny on an open relay: %d, want 404", st)
	}
}
