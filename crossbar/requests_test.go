package crossbar

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/internal/testutil"
)

// The relay's HTTP routes as a test calls them: each goes through the one
// request helper, testutil.Do, which sends tok as a bearer token unless it
// is empty.

// getStats fetches /stats with tok in the format asked for and returns the
// status and body.
func (r *relay) getStats(t testing.TB, tok, format string) (int, string) {
	t.Helper()
	resp := testutil.Do(t, testutil.Req{URL: r.http.URL + "/stats?format=" + format, Token: tok})
	return resp.Status, resp.Body
}

// denyBody posts body to /api/deny with tok and returns the status.
func (r *relay) denyBody(t testing.TB, tok, body string) int {
	t.Helper()
	return testutil.Do(t, testutil.Req{Method: http.MethodPost, URL: r.http.URL + auth.DenyPath, Body: body, Token: tok}).Status
}

// deny revokes a token id with an admin token and returns the status.
func (r *relay) deny(t testing.TB, adminTok, id string) int {
	t.Helper()
	return r.denyBody(t, adminTok, `{"jti":"`+id+`"}`)
}

// askAccess posts to the access point for route with tok from client c
// (nil: the default client) and returns the status and the answer's URI
// and reason; the answer must be JSON.
func (r *relay) askAccess(t testing.TB, c *http.Client, route, tok string) (status int, uri, reason string) {
	t.Helper()
	resp := testutil.Do(t, testutil.Req{Method: http.MethodPost, URL: r.http.URL + auth.AccessPrefix + route, Token: tok, Client: c})
	var body struct{ URI, Error string }
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("access %s: %d: %v", route, resp.Status, err)
	}
	return resp.Status, body.URI, body.Error
}

// access asks the access point for a websocket URI for route and returns
// the status and the URI, or the reason for a refusal.
func (r *relay) access(t testing.TB, route, tok string) (int, string) {
	t.Helper()
	st, uri, reason := r.askAccess(t, nil, route, tok)
	if st != http.StatusOK {
		return st, reason
	}
	return st, uri
}

// code gets a one-time code for route and returns the path and query to
// dial with it.
func (r *relay) code(t testing.TB, route, tok string) string {
	t.Helper()
	st, uri := r.access(t, route, tok)
	u, err := url.Parse(uri)
	if st != http.StatusOK || err != nil || u.Query().Get("code") == "" {
		t.Fatalf("access %s: %d %q %v, want a URI with a code", route, st, uri, err)
	}
	return u.RequestURI()
}

// askCode asks the access point for route with tok from client c and
// returns the status and the code (empty unless 200); a refusal must say
// why.
func (r *relay) askCode(t testing.TB, c *http.Client, route, tok string) (int, string) {
	t.Helper()
	st, uri, reason := r.askAccess(t, c, route, tok)
	if st != http.StatusOK {
		if reason == "" {
			t.Fatalf("access %s: %d without a reason", route, st)
		}
		return st, ""
	}
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	return st, u.Query().Get("code")
}
