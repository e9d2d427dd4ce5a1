package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sirupsen/logrus"
)

// DenyPath is where DenyHandler is mounted.
const DenyPath = "/api/deny"

const maxDenyBody = 64 << 10

// DenyRequest is the body of POST /api/deny: a token id with, if known, its
// expiry (unix seconds), or the token itself, from which both are read.
type DenyRequest struct {
	JTI   string `json:"jti,omitempty"`
	Exp   int64  `json:"exp,omitempty"`
	Token string `json:"token,omitempty"`
}

// DenyResponse answers a deny: the id and until when it stays denied.
type DenyResponse struct {
	Denied string    `json:"denied"`
	Until  time.Time `json:"until"`
}

// Deny refuses token id jti from now on: its handshakes, and codes issued to
// it, earlier ones too. exp is the token's expiry if known (zero if not); the
// entry is kept until then (plus Leeway), or for MaxTTL when unknown, since
// no token accepted here lives longer. Then every OnDeny hook runs, in the
// caller's goroutine, before Deny returns.
func (a *Auth) Deny(jti string, exp time.Time) (until time.Time, err error) {
	if jti == "" {
		return time.Time{}, badRequest("no token id to deny")
	}
	now := a.now()
	limit := now.Add(a.maxTTL + Leeway)
	until = exp.Add(Leeway)
	if exp.IsZero() || until.After(limit) {
		until = limit
	}
	a.mu.Lock()
	a.sweepLocked(now, false)
	if old, ok := a.denied[jti]; ok && old.After(until) {
		until = old
	}
	if _, ok := a.denied[jti]; !ok && len(a.denied) >= maxDenied {
		a.sweepLocked(now, true)
		if len(a.denied) >= maxDenied {
			a.mu.Unlock()
			return time.Time{}, &Error{Code: http.StatusServiceUnavailable, Reason: fmt.Sprintf("deny list full (%d ids); rotate the secret instead", maxDenied)}
		}
	}
	a.denied[jti] = until
	hooks := make([]func(string), 0, len(a.onDeny))
	for _, h := range a.onDeny {
		hooks = append(hooks, h)
	}
	a.mu.Unlock()
	a.log.WithFields(logrus.Fields{"id": jti, "until": until}).Info("relay token id denied")
	for _, h := range hooks {
		h(jti)
	}
	return until, nil
}

// Denied reports whether token id jti is denied now.
func (a *Auth) Denied(jti string) bool {
	if jti == "" {
		return false
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweepLocked(now, false)
	until, ok := a.denied[jti]
	return ok && !now.After(until)
}

// OnDeny registers f to be called with each denied token id, so the relay
// can close that id's live connections at once. f must not block for long:
// it runs in the goroutine calling Deny (the HTTP handler). The returned func
// unregisters f.
//
// Between Authorize and registering a new connection a deny can slip by;
// the relay closes that gap by checking Denied(grant.ID) after registering.
func (a *Auth) OnDeny(f func(jti string)) (remove func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := a.nextHook
	a.nextHook++
	a.onDeny[id] = f
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.onDeny, id)
	}
}

// DenyHandler serves POST /api/deny: with a bearer token carrying scope
// admin (any path: revocation is relay-wide) and a DenyRequest body, it
// denies the id and answers a DenyResponse.
func (a *Auth) DenyHandler() http.Handler { return http.HandlerFunc(a.serveDeny) }

func (a *Auth) serveDeny(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		WriteError(w, &Error{Code: http.StatusMethodNotAllowed, Reason: "use POST " + DenyPath})
		return
	}
	res, err := a.deny(w, r)
	if err != nil {
		a.log.WithFields(logrus.Fields{"url": r.URL.Path, "err": err}).Debug("relay deny refused")
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *Auth) deny(w http.ResponseWriter, r *http.Request) (*DenyResponse, error) {
	if a.Open() {
		return nil, &Error{Code: http.StatusNotFound, Reason: "relay runs without auth: there are no tokens to deny"}
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
		return nil, &Error{Code: http.StatusForbidden, Reason: "token lacks scope admin needed for " + DenyPath}
	}
	var req DenyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDenyBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, badRequest("body must be {\"jti\":\"…\",\"exp\":unix seconds} or {\"token\":\"…\"}: " + err.Error())
	}
	jti, exp, err := a.denyTarget(req)
	if err != nil {
		return nil, err
	}
	until, err := a.Deny(jti, exp)
	if err != nil {
		return nil, err
	}
	return &DenyResponse{Denied: jti, Until: until.UTC()}, nil
}

// denyTarget reads the id and expiry to deny from req.
func (a *Auth) denyTarget(req DenyRequest) (string, time.Time, error) {
	switch {
	case req.Token != "" && (req.JTI != "" || req.Exp != 0):
		return "", time.Time{}, badRequest("give a token or a jti (with exp), not both")
	case req.Token != "":
		// Only the signature matters: an expired or not-yet-valid token of
		// ours may still be worth denying.
		var c Claims
		p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithoutClaimsValidation())
		if len(req.Token) > maxTokenLen {
			return "", time.Time{}, badRequest("token too long")
		}
		if _, err := p.ParseWithClaims(req.Token, &c, a.key); err != nil {
			return "", time.Time{}, badRequest("token to deny: " + jwtReason(err))
		}
		if c.ID == "" {
			return "", time.Time{}, badRequest("token to deny has no id (jti)")
		}
		var exp time.Time
		if c.ExpiresAt != nil {
			exp = c.ExpiresAt.Time
		}
		return c.ID, exp, nil
	case req.JTI != "":
		if req.Exp < 0 {
			return "", time.Time{}, badRequest("exp must be unix seconds")
		}
		var exp time.Time
		if req.Exp > 0 && req.Exp < 1<<40 { // beyond that: unknown, so MaxTTL; avoids time overflow
			exp = time.Unix(req.Exp, 0)
		}
		return req.JTI, exp, nil
	default:
		return "", time.Time{}, badRequest("no jti or token to deny")
	}
}
