package cluster

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/internal/testutil"
)

var relaySecret = []byte("relay-token-secret-for-cluster-tests-7f3a9c")

// authNode starts a relay with auth on (the same secret everywhere) and a
// state file of its own, joined to seeds.
func authNode(t *testing.T, name string, seeds ...*node) (*node, *auth.Auth) {
	t.Helper()
	a := newAuth(t)
	return startNode(t, name, crossbar.Config{Auth: a}, seeds...), a
}

// authMesh is mesh of relays with auth on, as authNode starts them; it
// returns the first relay's Auth, to mint tokens with.
func authMesh(t *testing.T, names ...string) ([]*node, *auth.Auth) {
	t.Helper()
	var first *auth.Auth
	nodes := meshWith(t, func() crossbar.Config {
		a := newAuth(t)
		if first == nil {
			first = a
		}
		return crossbar.Config{Auth: a}
	}, names...)
	return nodes, first
}

// newAuth is a relay's Auth: the cluster's secret, a state file of its own.
func newAuth(t *testing.T) *auth.Auth {
	t.Helper()
	a, err := auth.New(auth.Config{Secret: relaySecret, StatePath: filepath.Join(t.TempDir(), "relay.json")}, testutil.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mint(t *testing.T, a *auth.Auth, path, scopes string) (tok, jti string) {
	t.Helper()
	tok, err := a.Mint(path, strings.Split(scopes, ","), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	return tok, g.ID
}

func (n *node) http() string { return "http" + strings.TrimPrefix(n.ws, "ws") }

func post(t *testing.T, u, token string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp := testutil.Do(t, testutil.Req{Method: http.MethodPost, URL: u, Body: string(b), Token: token,
		Header: []string{"Content-Type", "application/json"}})
	return resp.Status, []byte(resp.Body)
}

// A deny on C closes the token's connection on A within a second; a relay
// that joins after the deny refuses the token from its first moment.
func TestDenyIsClusterWide(t *testing.T) {
	nodes, authA := authMesh(t, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	viewer, jti := mint(t, authA, "lab1/", "read")
	admin, _ := mint(t, authA, "/", "admin")
	conn, st := testutil.Handshake(t, a.ws+"/out/lab1/cam", viewer)
	if conn == nil {
		t.Fatalf("the token is refused on A before any deny: %d", st)
	}
	closed := make(chan error, 1)
	go func() {
		_, _, err := conn.ReadMessage()
		closed <- err
	}()
	st, body := post(t, c.http()+auth.DenyPath, admin, auth.DenyRequest{Token: viewer})
	if st != http.StatusOK {
		t.Fatalf("deny on C: %d %s", st, body)
	}
	denied := time.Now()
	select {
	case err := <-closed:
		var ce *websocket.CloseError
		if !errorsAs(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
			t.Errorf("A closed the connection with %v, want 1008 token revoked", err)
		}
		if d := time.Since(denied); d > time.Second {
			t.Errorf("A closed the denied token's connection %v after the deny on C, want within 1 s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("A kept the denied token's connection open")
	}
	if _, st := testutil.Handshake(t, b.ws+"/out/lab1/cam", viewer); st != http.StatusUnauthorized {
		t.Errorf("B answers the denied token with %d, want 401", st)
	}
	d, authD := authNode(t, "d", b)
	if !authD.Denied(jti, "lab1/") {
		t.Error("a relay that joined after the deny did not learn it before serving")
	}
	if _, st := testutil.Handshake(t, d.ws+"/out/lab1/cam", viewer); st != http.StatusUnauthorized {
		t.Errorf("a relay that joined after the deny answers the token with %d, want 401", st)
	}
}

// A one-time code from A's access point opens the stream on B, once, and
// never again on any relay.
func TestCodeFromOneRelayWorksOnceOnAnother(t *testing.T) {
	nodes, authA := authMesh(t, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	viewer, _ := mint(t, authA, "lab1/", "read")
	st, body := post(t, a.http()+auth.AccessPrefix+"/out/lab1/cam", viewer, nil)
	if st != http.StatusOK {
		t.Fatalf("access on A: %d %s", st, body)
	}
	var acc struct{ URI string }
	if err := json.Unmarshal(body, &acc); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(acc.URI)
	if err != nil {
		t.Fatal(err)
	}
	code := u.Query().Get("code")
	withCode := func(n *node) string { return n.ws + "/out/lab1/cam?code=" + url.QueryEscape(code) }
	if conn, st := testutil.Handshake(t, withCode(b), ""); conn == nil {
		t.Fatalf("A's code on B: %d, want the stream", st)
	}
	for _, n := range []*node{b, a, c} {
		if _, st := testutil.Handshake(t, withCode(n), ""); st != http.StatusUnauthorized {
			t.Errorf("A's code used again on %s: %d, want 401", n.name, st)
		}
	}
	// A code for another route, or made up, opens nothing.
	if _, st := testutil.Handshake(t, b.ws+"/out/lab1/cam?code="+url.QueryEscape(code[:11]+strings.Repeat("A", 32)), ""); st != http.StatusUnauthorized {
		t.Errorf("a made-up code with A's tag: %d, want 401", st)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
