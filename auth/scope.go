package auth

import (
	"net/http"
	"strings"
)

// Admin tokens are scoped by their path like every other token: an admin
// for "lab1/" may look at lab1's topics and deny lab1's tokens, nothing
// else; only an admin for "/" reaches the whole relay. The relay asks Admin
// who is asking, then Sees for each topic it would show and MayDeny for each
// deny, so the rule lives here once.

// Admin checks that r carries one bearer token with scope admin and returns
// its grant. On an open relay (no secret) everyone is a relay-wide admin:
// the grant has Path "/" and Anonymous set. A refusal is an *Error (401 or
// 403) naming r's path.
func (a *Auth) Admin(r *http.Request) (*Grant, error) {
	if a.Open() {
		return &Grant{Path: "/", Scopes: []string{ScopeAdmin}, Anonymous: true}, nil
	}
	if len(r.Header.Values("Authorization")) == 0 {
		return nil, unauthorized("missing credentials: " + r.URL.Path + " needs a token with scope admin: send Authorization: Bearer <token>")
	}
	tok, err := bearer(r)
	if err != nil {
		return nil, err
	}
	g, err := a.Verify(tok)
	if err != nil {
		return nil, err
	}
	if !g.Has(ScopeAdmin) {
		return nil, &Error{Code: http.StatusForbidden, Reason: "token lacks scope admin needed for " + r.URL.Path}
	}
	return g, nil
}

// Sees reports whether the grant's path covers topic, a relay path such as
// "/out/lab1/cam", "/bi/lab1/api" or "/lab1/chat": the test an admin's view
// of the relay (stats, metrics) applies to every topic it would show.
func (g *Grant) Sees(topic string) bool {
	if g.Path == "/" {
		return true
	}
	rt, err := parseRoute(topic)
	return err == nil && covers(g.Path, rt.name)
}

// MayDeny reports whether the grant's path covers prefix, a token path in
// normalized form ("lab1/" or "lab1/cam/"; "/" for all).
func (g *Grant) MayDeny(prefix string) bool { return within(g.Path, prefix) }

// within reports whether every route under prefix inner is also under
// prefix outer; both normalized. "lab1/" holds "lab1/" and "lab1/cam/" but
// not "lab10/" nor "/".
func within(outer, inner string) bool {
	return outer == "/" || (inner != "/" && strings.HasPrefix(inner, outer))
}
