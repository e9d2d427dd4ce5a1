package auth_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/internal/testutil"
)

// craft signs arbitrary claims, for tokens Mint would never make.
func craft(t *testing.T, key []byte, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// goodClaims are what Mint makes for lab1/ read,write, for editing.
func goodClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"path": "lab1/", "scopes": []string{"read", "write"}, "aud": auth.DefaultAudience,
		"jti": "crafted", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func jtiOf(t *testing.T, a *auth.Auth, tok string) string {
	t.Helper()
	g, err := a.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return g.ID
}

func denyOK(t *testing.T, r *relay, jti string) {
	t.Helper()
	admin := mint(t, r.a, "/", "admin", time.Hour)
	if st, body := r.deny(t, admin, fmt.Sprintf(`{"jti":%q}`, jti)); st != http.StatusOK || body["denied"] != jti {
		t.Fatalf("deny %s: %d %v", jti, st, body)
	}
}

// TestHandshake dials the real relay: each refusal must arrive as the
// documented status and JSON reason at the handshake (so no upgrade
// happened, and the relay keeps no client), and each good credential must
// get a websocket that the relay lists in the route's role and topic. Each
// refusal of auth is tested here, once; crossbar's tests keep only its own
// refusals (limits) and the wiring. It is long because it is one table, so
// that every refusal reads side by side with its status and reason.
func TestHandshake(t *testing.T) {
	const day = 24 * time.Hour
	// bearer returns a request for route with a token minted by the relay.
	bearer := func(route, path, scopes string) func(*testing.T, *relay) (string, http.Header) {
		return func(t *testing.T, r *relay) (string, http.Header) {
			return r.wsURL(route), bearerHdr(mint(t, r.a, path, scopes, day))
		}
	}
	raw := func(route, authz string) func(*testing.T, *relay) (string, http.Header) {
		return func(t *testing.T, r *relay) (string, http.Header) {
			h := http.Header{}
			if authz != "" {
				h.Set("Authorization", authz)
			}
			return r.wsURL(route), h
		}
	}
	crafted := func(route string, key []byte, edit func(jwt.MapClaims)) func(*testing.T, *relay) (string, http.Header) {
		return func(t *testing.T, r *relay) (string, http.Header) {
			c := goodClaims(r.clock.Now())
			edit(c)
			return r.wsURL(route), bearerHdr(craft(t, key, c))
		}
	}
	tests := []struct {
		name   string
		req    func(*testing.T, *relay) (url string, hdr http.Header)
		status int
		reason string // a substring of the JSON reason
	}{
		// Refusals: credentials.
		{"no token", raw("/out/lab1/cam", ""), 401, "missing credentials"},
		{"no token on public prefix's /in/", raw("/in/demo/cam", ""), 401, "missing credentials"},
		{"no token on bidirectional", raw("/lab1/api", ""), 401, "missing credentials"},
		{"basic auth", raw("/out/lab1/cam", "Basic dXNlcjpwdw=="), 401, "Bearer"},
		{"empty bearer", raw("/out/lab1/cam", "Bearer "), 401, "Bearer"},
		{"garbage bearer", raw("/out/lab1/cam", "Bearer not.a.jwt"), 401, "malformed"},
		{"wrong signature", func(t *testing.T, r *relay) (string, http.Header) {
			other, err := auth.New(auth.Config{Secret: otherSecret, Now: r.clock.Now}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return r.wsURL("/out/lab1/cam"), bearerHdr(mint(t, other, "lab1/", "read", day))
		}, 401, "signature"},
		{"alg none", func(t *testing.T, r *relay) (string, http.Header) {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, goodClaims(r.clock.Now())).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return r.wsURL("/out/lab1/cam"), bearerHdr(tok)
		}, 401, "signature"},
		{"HS512", func(t *testing.T, r *relay) (string, http.Header) {
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, goodClaims(r.clock.Now())).SignedString(secret)
			if err != nil {
				t.Fatal(err)
			}
			return r.wsURL("/out/lab1/cam"), bearerHdr(tok)
		}, 401, "signature"},
		{"expired", func(t *testing.T, r *relay) (string, http.Header) {
			tok := mint(t, r.a, "lab1/", "read", time.Minute)
			r.clock.Advance(time.Minute + auth.Leeway + time.Second)
			return r.wsURL("/out/lab1/cam"), bearerHdr(tok)
		}, 401, "expired"},
		{"not valid yet", crafted("/out/lab1/cam", secret, func(c jwt.MapClaims) {
			c["nbf"] = c["nbf"].(int64) + 3600
		}), 401, "not valid yet"},
		{"wrong audience", func(t *testing.T, r *relay) (string, http.Header) {
			other, err := auth.New(auth.Config{Secret: secret, Audience: "another-relay", Now: r.clock.Now}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return r.wsURL("/out/lab1/cam"), bearerHdr(mint(t, other, "lab1/", "read", day))
		}, 401, "audience"},
		{"no audience", crafted("/out/lab1/cam", secret, func(c jwt.MapClaims) { delete(c, "aud") }), 401, "aud claim is required"},
		{"no exp", crafted("/out/lab1/cam", secret, func(c jwt.MapClaims) { delete(c, "exp") }), 401, "exp claim is required"},
		{"no jti", crafted("/out/lab1/cam", secret, func(c jwt.MapClaims) { delete(c, "jti") }), 401, "no id"},
		{"no iat", crafted("/out/lab1/cam", secret, func(c jwt.MapClaims) { delete(c, "iat") }), 401, "iat"},
		{"no path claim", crafted("/out/lab1/cam", secret, func(c jwt.MapClaims) { delete(c, "path") }), 401, "path"},
		{"dot path claim", crafted("/out/lab1/cam", secret, func(c jwt.MapClaims) { c["path"] = "lab1/../" }), 401, "path"},
		{"lives past MaxTTL", crafted("/out/lab1/cam", secret, func(c jwt.MapClaims) {
			c["exp"] = c["iat"].(int64) + int64(auth.DefaultMaxTTL/time.Second) + 3600
		}), 401, "maximum"},

		// Refusals: a valid token that does not reach.
		{"read token publishing", bearer("/in/lab1/cam", "lab1/", "read"), 403, "scope write"},
		{"write token watching", bearer("/out/lab1/cam", "lab1/", "write"), 403, "scope read"},
		{"read token on bidirectional", bearer("/lab1/api", "lab1/", "read"), 403, "scope write"},
		{"write token on /bi/", bearer("/bi/lab1/api", "lab1/", "write"), 403, "scope read"},
		{"admin token on a route", bearer("/out/lab1/cam", "/", "admin"), 403, "scope read"},
		{"lab1 token on lab2 /out/", bearer("/out/lab2/cam", "lab1/", "read"), 403, "does not cover"},
		{"lab1 token on lab2 /in/", bearer("/in/lab2/cam", "lab1/", "write"), 403, "does not cover"},
		{"lab1 token on lab2 bidirectional", bearer("/lab2/api", "lab1/", "read,write"), 403, "does not cover"},
		{"lab1 token on lab10", bearer("/out/lab10/cam", "lab1/", "read"), 403, "does not cover"},
		{"lab1 token on /out/in/lab1", bearer("/out/in/lab1/cam", "lab1/", "read"), 403, "does not cover"},
		{"lab1 token climbing out", bearer("/out/lab1/../lab2/cam", "lab1/", "read"), 400, ".."},
		{"lab1 token via empty segment", bearer("/out/lab1//cam", "lab1/", "read"), 400, "empty segment"},
		{"route naming no topic", bearer("/out/", "/", "read"), 400, "empty segment"},
		{"route /in", bearer("/in", "/", "read,write"), 400, "no topic"},
		{"both code and bearer", func(t *testing.T, r *relay) (string, http.Header) {
			tok := mint(t, r.a, "lab1/", "read", day)
			return r.code(t, "/out/lab1/cam", tok), bearerHdr(tok)
		}, 400, "not both"},

		// Refusals: codes.
		{"unknown code", raw("/out/lab1/cam?code=abc", ""), 401, "unknown"},
		{"empty code", raw("/out/lab1/cam?code=", ""), 401, "unknown"},
		{"code used twice", func(t *testing.T, r *relay) (string, http.Header) {
			uri := r.code(t, "/out/lab1/cam", mint(t, r.a, "lab1/", "read", day))
			if _, st, reason := r.dial(t, uri, nil); st != 101 {
				t.Fatalf("first use of the code: %d %s", st, reason)
			}
			return uri, nil
		}, 401, "already used"},
		{"code after CodeTTL", func(t *testing.T, r *relay) (string, http.Header) {
			uri := r.code(t, "/out/lab1/cam", mint(t, r.a, "lab1/", "read", day))
			r.clock.Advance(auth.DefaultCodeTTL + time.Second)
			return uri, nil
		}, 401, "code expired"},
		{"code for another route", func(t *testing.T, r *relay) (string, http.Header) {
			uri := r.code(t, "/out/lab1/cam", mint(t, r.a, "lab1/", "read", day))
			return strings.Replace(uri, "/out/lab1/cam", "/out/lab1/other", 1), nil
		}, 401, "another route"},
		{"code for /out/ used on /in/", func(t *testing.T, r *relay) (string, http.Header) {
			uri := r.code(t, "/out/lab1/cam", mint(t, r.a, "lab1/", "read,write", day))
			return strings.Replace(uri, "/out/", "/in/", 1), nil
		}, 401, "another route"},
		{"code tried on a wrong route is spent", func(t *testing.T, r *relay) (string, http.Header) {
			uri := r.code(t, "/out/lab1/cam", mint(t, r.a, "lab1/", "read", day))
			if _, st, _ := r.dial(t, strings.Replace(uri, "/cam", "/other", 1), nil); st != 401 {
				t.Fatalf("wrong route: %d", st)
			}
			return uri, nil
		}, 401, "already used"},

		// Refusals: revocation.
		{"denied token", func(t *testing.T, r *relay) (string, http.Header) {
			tok := mint(t, r.a, "lab1/", "read", day)
			denyOK(t, r, jtiOf(t, r.a, tok))
			return r.wsURL("/out/lab1/cam"), bearerHdr(tok)
		}, 401, "denied"},
		{"denied token's earlier code", func(t *testing.T, r *relay) (string, http.Header) {
			tok := mint(t, r.a, "lab1/", "read", day)
			uri := r.code(t, "/out/lab1/cam", tok)
			denyOK(t, r, jtiOf(t, r.a, tok))
			return uri, nil
		}, 401, "denied"},

		// Good credentials.
		{"read token watches", bearer("/out/lab1/cam", "lab1/", "read"), 101, ""},
		{"read token watches the prefix itself", bearer("/out/lab1", "lab1/", "read"), 101, ""},
		{"write token publishes", bearer("/in/lab1/cam", "lab1/", "write"), 101, ""},
		{"read,write on /bi/", bearer("/bi/lab1/api", "lab1/", "read,write"), 101, ""},
		{"read,write on a bare path", bearer("/lab1/api", "lab1/", "read,write"), 101, ""},
		{"deeper prefix", bearer("/out/lab1/cams/front", "/lab1/cams", "read"), 101, ""},
		{"root token", bearer("/in/anything/at/all", "/", "write"), 101, ""},
		{"lowercase scheme", func(t *testing.T, r *relay) (string, http.Header) {
			return r.wsURL("/out/lab1/cam"), http.Header{"Authorization": {"bearer " + mint(t, r.a, "lab1/", "read", day)}}
		}, 101, ""},
		{"token inside the leeway", func(t *testing.T, r *relay) (string, http.Header) {
			tok := mint(t, r.a, "lab1/", "read", time.Minute)
			r.clock.Advance(time.Minute + auth.Leeway/2)
			return r.wsURL("/out/lab1/cam"), bearerHdr(tok)
		}, 101, ""},
		{"public prefix without token", raw("/out/demo/cam", ""), 101, ""},
		{"public prefix itself", raw("/out/demo", ""), 101, ""},
		{"public prefix ignores a bad token", raw("/out/demo/cam", "Bearer junk"), 101, ""},
		{"code from the access point", func(t *testing.T, r *relay) (string, http.Header) {
			return r.code(t, "/out/lab1/cam", mint(t, r.a, "lab1/", "read", day)), nil
		}, 101, ""},
		{"code on the last second of CodeTTL", func(t *testing.T, r *relay) (string, http.Header) {
			uri := r.code(t, "/in/lab1/cam", mint(t, r.a, "lab1/", "write", day))
			r.clock.Advance(auth.DefaultCodeTTL)
			return uri, nil
		}, 101, ""},
		{"code on bidirectional", func(t *testing.T, r *relay) (string, http.Header) {
			return r.code(t, "/lab1/api", mint(t, r.a, "lab1/", "read,write", day)), nil
		}, 101, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRelay(t, auth.Config{Secret: secret, Public: []string{"demo/"}}, false)
			url, hdr := tc.req(t, r)
			c, st, reason := r.dial(t, url, hdr)
			if st != tc.status || !strings.Contains(reason, tc.reason) {
				t.Fatalf("dial %s: got %d %q, want %d with %q", url, st, reason, tc.status, tc.reason)
			}
			if st == 101 && c == nil {
				t.Fatal("101 without a connection")
			}
		})
	}
}

// TestDenyHook: a deny through POST /api/deny has reported itself to every
// OnDeny hook, with its id and path, by the time the POST answers, so that
// the relay has closed the token's live connections by then (crossbar's
// TestDenyClosesLiveConnections checks that they close); a new handshake of
// that id is refused, another token's is not.
func TestDenyHook(t *testing.T) {
	r := newRelay(t, auth.Config{Secret: secret}, false)
	tok := mint(t, r.a, "lab1/", "read", time.Hour)
	other := mint(t, r.a, "lab1/", "read", time.Hour)
	jti := jtiOf(t, r.a, tok)

	denyOK(t, r, jti)
	select {
	case d := <-r.hooks:
		if d.JTI != jti || d.Path != "/" {
			t.Fatalf("OnDeny reported %+v, want %q under /", d, jti)
		}
	default:
		t.Fatal("OnDeny had not run when POST /api/deny answered")
	}
	if _, st, reason := r.dial(t, r.wsURL("/out/lab1/cam"), bearerHdr(tok)); st != 401 || !strings.Contains(reason, "denied") {
		t.Fatalf("dial after deny: %d %q", st, reason)
	}
	if _, st, reason := r.dial(t, r.wsURL("/out/lab1/cam"), bearerHdr(other)); st != 101 {
		t.Fatalf("another token after the deny: %d %q", st, reason)
	}
}

func TestDenyRoute(t *testing.T) {
	r := newRelay(t, auth.Config{Secret: secret}, false)
	admin := mint(t, r.a, "lab1/", "admin", time.Hour)
	victim := mint(t, r.a, "lab1/", "read", time.Hour)
	vid := jtiOf(t, r.a, victim)
	tests := []struct {
		name   string
		tok    string
		body   string
		status int
		reason string
	}{
		{"no token", "", `{"jti":"x"}`, 401, "missing credentials"},
		{"not admin", mint(t, r.a, "/", "read,write", time.Hour), `{"jti":"x"}`, 403, "scope admin"},
		{"bad json", admin, `{"jti":`, 400, "body"},
		{"unknown field", admin, `{"id":"x"}`, 400, "unknown field"},
		{"nothing to deny", admin, `{}`, 400, "no jti"},
		{"token and jti", admin, fmt.Sprintf(`{"jti":"x","token":%q}`, victim), 400, "not both"},
		{"foreign token", admin, `{"token":"a.b.c"}`, 400, "token to deny"},
		{"by token", admin, fmt.Sprintf(`{"token":%q}`, victim), 200, ""},
		{"by jti with exp", admin, fmt.Sprintf(`{"jti":"abc","exp":%d}`, epoch.Add(time.Hour).Unix()), 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body := r.deny(t, tc.tok, tc.body)
			if st != tc.status {
				t.Fatalf("got %d %v, want %d", st, body, tc.status)
			}
			if tc.status != 200 {
				if reason, _ := body["error"].(string); !strings.Contains(reason, tc.reason) {
					t.Fatalf("reason %q, want %q", reason, tc.reason)
				}
			}
		})
	}
	if !r.a.Denied(vid, "lab1/") {
		t.Fatal("denying by token did not deny its id")
	}
	if _, st, _ := r.dial(t, r.wsURL("/out/lab1/cam"), bearerHdr(victim)); st != 401 {
		t.Fatalf("denied victim dialled: %d", st)
	}
	// GET is not a deny.
	resp, err := r.srv.Client().Get(r.srv.URL + auth.DenyPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET %s: %d", auth.DenyPath, resp.StatusCode)
	}
}

// TestDenyExpires: the deny list forgets an id once its token could no
// longer be used anyway, so it stays bounded.
func TestDenyExpires(t *testing.T) {
	c := newClock()
	a, err := auth.New(auth.Config{Secret: secret, Now: c.Now}, testutil.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.Deny("x", "/", c.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Now().Add(time.Hour + auth.Leeway); !d.Until.Equal(want) {
		t.Fatalf("until %v, want %v", d.Until, want)
	}
	if !a.Denied("x", "lab1/") {
		t.Fatal("not denied")
	}
	c.Advance(time.Hour + auth.Leeway + time.Second)
	if a.Denied("x", "lab1/") {
		t.Fatal("still denied after the token's expiry")
	}
	// Unknown expiry: kept for MaxTTL, since no accepted token lives longer.
	d, err = a.Deny("y", "/", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Now().Add(auth.DefaultMaxTTL + auth.Leeway); !d.Until.Equal(want) {
		t.Fatalf("unknown exp: until %v, want %v", d.Until, want)
	}
	if _, err := a.Deny("", "/", time.Time{}); err == nil {
		t.Fatal("empty id denied")
	}
}

// TestAccess checks the access point: the URI it answers (scheme, host,
// route, a code and never the token) and its refusals, in one table.
func TestAccess(t *testing.T) {
	r := newRelay(t, auth.Config{Secret: secret, Public: []string{"/demo"}}, false)
	read := mint(t, r.a, "lab1/", "read", time.Hour)
	host := strings.TrimPrefix(r.srv.URL, "http://")
	tests := []struct {
		name    string
		route   string
		hdr     http.Header
		status  int
		uri     string // the URI without its query
		code    bool
		reason  string
		noToken string // must not appear in the URI
	}{
		{"ws", "/out/lab1/cam", bearerHdr(read), 200, "ws://" + host + "/out/lab1/cam", true, "", read},
		{"wss behind a TLS proxy", "/out/lab1/cam", http.Header{"Authorization": {"Bearer " + read}, "X-Forwarded-Proto": {"https"}}, 200, "wss://" + host + "/out/lab1/cam", true, "", read},
		{"public without token", "/out/demo/cam", nil, 200, "ws://" + host + "/out/demo/cam", false, "", ""},
		{"no token", "/out/lab1/cam", nil, 401, "", false, "missing credentials", ""},
		{"bad token", "/out/lab1/cam", bearerHdr("x.y.z"), 401, "", false, "token", ""},
		{"other lab", "/out/lab2/cam", bearerHdr(read), 403, "", false, "does not cover", ""},
		{"read token for /in/", "/in/lab1/cam", bearerHdr(read), 403, "", false, "scope write", ""},
		{"no route", "/", bearerHdr(read), 400, "", false, "empty", ""},
		{"unclean route", "/out/lab1/./cam", bearerHdr(read), 400, "", false, "\".\"", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body, _ := r.access(t, http.MethodPost, tc.route, tc.hdr)
			if st != tc.status {
				t.Fatalf("got %d %v, want %d", st, body, tc.status)
			}
			if st != 200 {
				if !strings.Contains(body["error"], tc.reason) {
					t.Fatalf("reason %q, want %q", body["error"], tc.reason)
				}
				return
			}
			u, err := url.Parse(body["uri"])
			if err != nil {
				t.Fatal(err)
			}
			code := u.Query().Get("code")
			u.RawQuery = ""
			if u.String() != tc.uri {
				t.Fatalf("uri %s, want %s?…", body["uri"], tc.uri)
			}
			if tc.code != (code != "") {
				t.Fatalf("uri %s: code present %v, want %v", body["uri"], code != "", tc.code)
			}
			if b, err := base64.RawURLEncoding.DecodeString(code); tc.code && (err != nil || len(b) < 16) {
				t.Fatalf("code %q is not ≥128 random bits", code)
			}
			if tc.noToken != "" && strings.Contains(body["uri"], tc.noToken) {
				t.Fatalf("token leaked into %s", body["uri"])
			}
		})
	}
	t.Run("codes differ", func(t *testing.T) {
		a, b := r.code(t, "/out/lab1/cam", read), r.code(t, "/out/lab1/cam", read)
		if a == b {
			t.Fatalf("two codes alike: %s", a)
		}
	})
	t.Run("GET refused", func(t *testing.T) {
		st, body, hdr := r.access(t, http.MethodGet, "/out/lab1/cam", bearerHdr(read))
		if st != http.StatusMethodNotAllowed || hdr.Get("Allow") != "POST, OPTIONS" || body["error"] == "" {
			t.Fatalf("GET: %d %v Allow=%q", st, body, hdr.Get("Allow"))
		}
	})
	t.Run("preflight from the relay's own page", func(t *testing.T) {
		origin := r.srv.URL
		st, _, hdr := r.access(t, http.MethodOptions, "/out/lab1/cam", http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"POST"}})
		if st != http.StatusNoContent || hdr.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(hdr.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("preflight: %d %v", st, hdr)
		}
	})
	t.Run("preflight from elsewhere", func(t *testing.T) {
		st, _, hdr := r.access(t, http.MethodOptions, "/out/lab1/cam", http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}})
		if st != http.StatusNoContent || hdr.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("foreign preflight allowed: %d %v", st, hdr)
		}
	})
}

// TestAccessTLS: over real TLS the access point answers wss://, and the code
// connects over TLS.
func TestAccessTLS(t *testing.T) {
	r := newRelay(t, auth.Config{Secret: secret}, true)
	uri := r.code(t, "/out/lab1/cam", mint(t, r.a, "lab1/", "read", time.Hour))
	want := "wss://" + strings.TrimPrefix(r.srv.URL, "https://") + "/out/lab1/cam?code="
	if !strings.HasPrefix(uri, want) {
		t.Fatalf("uri %s, want %s…", uri, want)
	}
	if _, st, reason := r.dial(t, uri, nil); st != 101 {
		t.Fatalf("dial %s: %d %s", uri, st, reason)
	}
}

// TestOpen: without a secret every route is open, the access point answers
// plain URIs, and nothing can be minted or denied.
func TestOpen(t *testing.T) {
	r := newRelay(t, auth.Config{}, false)
	if !r.a.Open() {
		t.Fatal("no secret but not Open")
	}
	for _, route := range []string{"/in/lab1/cam", "/out/lab1/cam", "/lab1/api"} {
		if _, st, reason := r.dial(t, r.wsURL(route), nil); st != 101 {
			t.Fatalf("open relay refused %s: %d %s", route, st, reason)
		}
	}
	st, body, _ := r.access(t, http.MethodPost, "/out/lab1/cam", nil)
	if st != 200 || strings.Contains(body["uri"], "code=") {
		t.Fatalf("open access: %d %v", st, body)
	}
	if _, err := r.a.Mint("lab1/", []string{"read"}, time.Hour); err == nil {
		t.Fatal("minted without a secret")
	}
	if st, _ := r.deny(t, "x", `{"jti":"x"}`); st != http.StatusNotFound {
		t.Fatalf("deny on an open relay: %d", st)
	}
}
