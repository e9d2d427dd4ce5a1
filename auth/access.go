package auth

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/sirupsen/logrus"
)

// AccessPrefix is where AccessHandler is mounted: POST AccessPrefix+route.
const AccessPrefix = "/access"

// AccessHandler serves `POST /access/{route...}` (mount it at "/access/"
// without stripping the prefix). With a bearer token that may use route it
// answers {"uri":"ws(s)://host/{route}?code=…"}: the code is good for one
// handshake on exactly that route within CodeTTL, so a browser can connect
// without a token in any URL. A public route, or an open relay, gets the URI
// without a code and needs no token. OPTIONS answers a CORS preflight, and
// allows only the relay's own origin (the player page): a page elsewhere
// gets no Access-Control-Allow-Origin.
func (a *Auth) AccessHandler() http.Handler { return http.HandlerFunc(a.serveAccess) }

func (a *Auth) serveAccess(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Vary", "Origin")
	origin, same := sameOrigin(r)
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Allow", "POST, OPTIONS")
		if same {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
		}
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		WriteError(w, &Error{Code: http.StatusMethodNotAllowed, Reason: "use POST " + AccessPrefix + "/{route}"})
		return
	}
	if same {
		w.Header().Set("Access-Control-Allow-Origin", origin)
	}
	uri, err := a.access(r)
	if err != nil {
		a.log.WithFields(logrus.Fields{"url": r.URL.Path, "err": err}).Debug("relay access refused")
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"uri": uri})
}

func (a *Auth) access(r *http.Request) (string, error) {
	p, ok := strings.CutPrefix(r.URL.Path, AccessPrefix)
	if !ok {
		return "", &Error{Code: http.StatusNotFound, Reason: "access point is " + AccessPrefix + "/{route}"}
	}
	rt, err := parseRoute(p)
	if err != nil {
		return "", err
	}
	if r.Host == "" {
		return "", badRequest("request has no Host")
	}
	u := url.URL{Scheme: "ws", Host: r.Host, Path: rt.path}
	if secure(r) {
		u.Scheme = "wss"
	}
	if a.Open() || a.isPublic(rt) {
		return u.String(), nil
	}
	tok, err := bearer(r)
	if err != nil {
		return "", err
	}
	g, err := a.check(tok, rt)
	if err != nil {
		return "", err
	}
	code, err := a.issue(rt.path, *g, remoteIP(r))
	if err != nil {
		return "", err
	}
	u.RawQuery = url.Values{"code": {code}}.Encode()
	return u.String(), nil
}

// issue stores a new code for route on behalf of g, asked for from addr.
func (a *Auth) issue(route string, g Grant, addr string) (string, error) {
	code, err := randomString(24) // 192 bits
	if err != nil {
		return "", err
	}
	if tag, _ := a.codeSharing(""); tag != "" {
		code = tag + code
	}
	now := a.now()
	if err := a.codes.add(now, code, codeEntry{route: route, grant: g, addr: addr, expires: now.Add(a.codeTTL)}); err != nil {
		return "", err
	}
	a.codesIssued.Add(1)
	return code, nil
}

// redeem spends code: whatever the outcome, it cannot be presented again.
// A code another relay of a cluster issued is spent there.
func (a *Auth) redeem(code string, rt route) (*Grant, error) {
	if _, remote := a.codeSharing(code); remote != nil {
		return a.redeemRemote(remote, code, rt)
	}
	return a.redeemLocal(code, rt)
}

// redeemLocal spends a code this relay issued.
func (a *Auth) redeemLocal(code string, rt route) (*Grant, error) {
	now := a.now()
	e, ok := a.codes.take(now, code)
	switch {
	case !ok:
		return nil, unauthorized("code unknown or already used")
	case now.After(e.expires):
		return nil, unauthorized("code expired")
	case e.route != rt.path:
		return nil, unauthorized("code was issued for another route")
	case e.grant.Expired(now):
		return nil, unauthorized("token expired")
	case a.Denied(e.grant.ID, e.grant.Path):
		return nil, unauthorized("token id denied")
	}
	a.codesRedeemed.Add(1)
	g := e.grant
	return rt.grant(&g), nil
}

// secure reports whether the client reached us over TLS, directly or through
// a proxy that says so. Trusting the header is safe: it only picks ws or wss
// for the client's own answer.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// sameOrigin reports whether the request's Origin is the relay itself.
func sameOrigin(r *http.Request) (string, bool) {
	o := r.Header.Get("Origin")
	if o == "" {
		return "", false
	}
	u, err := url.Parse(o)
	if err != nil {
		return "", false
	}
	want := "http"
	if secure(r) {
		want = "https"
	}
	return o, u.Scheme == want && u.Host == r.Host && u.Path == ""
}
