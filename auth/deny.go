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

// DenyRequest is the body of POST /api/deny: the token itself, from which
// its id, path and expiry are read; or a token id with, if known, its expiry
// (unix seconds) and the path it was minted for, or a path above that.
// Without a path, a deny by id reaches as far as the admin's own path.
type DenyRequest struct {
	JTI   string `json:"jti,omitempty"`
	Path  string `json:"path,omitempty"`
	Exp   int64  `json:"exp,omitempty"`
	Token string `json:"token,omitempty"`
}

// DenyResponse answers a deny: the id, the path under which tokens with that
// id are refused, and until when.
type DenyResponse struct {
	Denied string    `json:"denied"`
	Path   string    `json:"path"`
	Until  time.Time `json:"until"`
}

// Denial is one entry of the deny list: a token whose id is JTI and whose
// path lies under Path is refused until Until. Scoping an entry by path is
// what lets an admin of one lab deny by id without reaching another lab's
// token that happens to carry the same id.
type Denial struct {
	JTI   string    `json:"jti"`
	Path  string    `json:"path"`
	Until time.Time `json:"until"`
}

// Refuses reports whether the entry refuses a token with id jti minted for
// path (normalized), leaving time aside.
func (d Denial) Refuses(jti, path string) bool {
	return jti != "" && jti == d.JTI && within(d.Path, path)
}

// Deny refuses tokens with id jti under path ("lab1/", or "/" for every
// path), as the relay-wide admin does, from now on: their handshakes, and codes issued to them, earlier ones
// too. exp is the token's expiry if known (zero if not); the entry is kept
// until then (plus Leeway), or for MaxTTL when unknown, since no token
// accepted here lives longer. An exp already past (beyond Leeway) is a 400:
// such a token is refused anyway. With a state file the list is saved before
// Deny returns; every OnDeny hook has run by then, in the caller's goroutine.
func (a *Auth) Deny(jti, path string, exp time.Time) (Denial, error) {
	return a.denyAs("/", jti, path, exp)
}

// denyAs is Deny on behalf of an admin for adminPath, which must cover path:
// an admin that is not relay-wide may keep at most maxDeniedPerAdmin
// entries under its path (429 beyond).
func (a *Auth) denyAs(adminPath, jti, path string, exp time.Time) (Denial, error) {
	if jti == "" {
		return Denial{}, badRequest("no token id to deny")
	}
	p, err := normalizePrefix(path)
	if err != nil {
		return Denial{}, badRequest(fmt.Sprintf("path %q: %v", path, err))
	}
	now := a.now()
	if !exp.IsZero() && now.After(exp.Add(Leeway)) {
		return Denial{}, badRequest(fmt.Sprintf("exp %s is in the past: that token has expired and is refused anyway", exp.UTC().Format(time.RFC3339)))
	}
	limit := now.Add(a.maxTTL + Leeway)
	d := Denial{JTI: jti, Path: p, Until: exp.Add(Leeway)}
	if exp.IsZero() || d.Until.After(limit) {
		d.Until = limit
	}
	if d, err = a.addDenial(now, d, adminPath); err != nil {
		return Denial{}, err
	}
	hooks := a.denyHooks()
	a.log.WithFields(logrus.Fields{"id": jti, "path": p, "until": d.Until}).Info("relay token id denied")
	for _, h := range hooks {
		h(d)
	}
	if err := a.persist(); err != nil {
		a.log.WithFields(logrus.Fields{"id": jti, "state": a.statePath, "err": err}).Error("deny list not saved: this deny lasts only until the relay restarts")
		return d, &Error{Code: http.StatusInternalServerError, Reason: "denied until the relay restarts only: saving the deny list failed"}
	}
	return d, nil
}

// addDenial puts d on the list for an admin of adminPath, or lengthens the
// entry it repeats, and returns the entry as kept.
func (a *Auth) addDenial(now time.Time, d Denial, adminPath string) (Denial, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweepDeniedLocked(now, false)
	list := a.denied[d.JTI]
	for i, old := range list {
		if old.Path == d.Path {
			if old.Until.After(d.Until) {
				d.Until = old.Until
			}
			list[i] = d
			return d, nil
		}
	}
	if adminPath != "/" {
		n := 0
		for _, list := range a.denied {
			for _, e := range list {
				if within(adminPath, e.Path) {
					n++
				}
			}
		}
		if n >= maxDeniedPerAdmin {
			return Denial{}, &Error{Code: http.StatusTooManyRequests, Reason: fmt.Sprintf("%d ids are denied under %s, the most one lab's admin may keep; they leave as their tokens expire", n, adminPath)}
		}
	}
	if a.nDenied >= maxDenied {
		a.sweepDeniedLocked(now, true)
		if a.nDenied >= maxDenied {
			return Denial{}, &Error{Code: http.StatusServiceUnavailable, Reason: fmt.Sprintf("deny list full (%d entries); rotate the secret instead", maxDenied)}
		}
	}
	a.denied[d.JTI] = append(a.denied[d.JTI], d)
	a.nDenied++
	return d, nil
}

func (a *Auth) denyHooks() []func(Denial) {
	a.mu.Lock()
	defer a.mu.Unlock()
	hooks := make([]func(Denial), 0, len(a.onDeny))
	for _, h := range a.onDeny {
		hooks = append(hooks, h)
	}
	return hooks
}

// Denied reports whether a token with id jti minted for path (normalized)
// is denied now.
func (a *Auth) Denied(jti, path string) bool {
	if jti == "" {
		return false
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweepDeniedLocked(now, false)
	for _, d := range a.denied[jti] {
		if d.Refuses(jti, path) && !now.After(d.Until) {
			return true
		}
	}
	return false
}

// sweepDeniedLocked drops the entries whose tokens have expired, at most
// once per CodeTTL unless forced, so the work is amortized over the calls.
func (a *Auth) sweepDeniedLocked(now time.Time, force bool) {
	if d := now.Sub(a.lastDenySweep); !force && d >= 0 && d < a.codeTTL {
		return
	}
	a.lastDenySweep = now
	for id, list := range a.denied {
		kept := list[:0]
		for _, d := range list {
			if !now.After(d.Until) {
				kept = append(kept, d)
			}
		}
		a.nDenied -= len(list) - len(kept)
		if len(kept) == 0 {
			delete(a.denied, id)
		} else {
			a.denied[id] = kept
		}
	}
}

// OnDeny registers f to be called with each new or lengthened entry, so the
// relay can close the live connections it refuses (Denial.Refuses) at once.
// f must not block for long: it runs in the goroutine calling Deny (the HTTP
// handler). The returned func unregisters f.
//
// Between Authorize and registering a new connection a deny can slip by;
// the relay closes that gap by checking Denied after registering.
func (a *Auth) OnDeny(f func(Denial)) (remove func()) {
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
// admin and a DenyRequest body, it denies the id under the path, if the
// admin's path covers it, and answers a DenyResponse.
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
	admin, err := a.Admin(r)
	if err != nil {
		return nil, err
	}
	var req DenyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDenyBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, badRequest("body must be {\"jti\":\"…\",\"path\":\"lab1/\",\"exp\":unix seconds} or {\"token\":\"…\"}: " + err.Error())
	}
	jti, path, exp, err := a.denyTarget(req, admin.Path)
	if err != nil {
		return nil, err
	}
	if !admin.MayDeny(path) {
		return nil, &Error{Code: http.StatusForbidden, Reason: fmt.Sprintf("an admin token for %s cannot deny tokens for %s", admin.Path, path)}
	}
	d, err := a.denyAs(admin.Path, jti, path, exp)
	if err != nil {
		return nil, err
	}
	return &DenyResponse{Denied: d.JTI, Path: d.Path, Until: d.Until.UTC()}, nil
}

// denyTarget reads the id, path and expiry to deny from req; a deny by id
// without a path takes the admin's.
func (a *Auth) denyTarget(req DenyRequest, adminPath string) (jti, path string, exp time.Time, err error) {
	switch {
	case req.Token != "" && (req.JTI != "" || req.Exp != 0 || req.Path != ""):
		return "", "", time.Time{}, badRequest("give a token, or a jti (with path and exp), not both")
	case req.Token != "":
		return a.tokenTarget(req.Token)
	case req.JTI != "":
		if req.Exp < 0 {
			return "", "", time.Time{}, badRequest("exp must be unix seconds")
		}
		if req.Exp > 0 && req.Exp < 1<<40 { // beyond that: unknown, so MaxTTL; avoids time overflow
			exp = time.Unix(req.Exp, 0)
		}
		path = adminPath
		if req.Path != "" {
			if path, err = normalizePrefix(req.Path); err != nil {
				return "", "", time.Time{}, badRequest(fmt.Sprintf("path %q: %v", req.Path, err))
			}
		}
		return req.JTI, path, exp, nil
	default:
		return "", "", time.Time{}, badRequest("no jti or token to deny")
	}
}

// tokenTarget reads the id, path and expiry of a token to deny. Only the
// signature matters: a token of ours that is not valid yet may still be
// worth denying (an expired one is refused by Deny).
func (a *Auth) tokenTarget(tok string) (jti, path string, exp time.Time, err error) {
	if len(tok) > maxTokenLen {
		return "", "", time.Time{}, badRequest("token too long")
	}
	var c Claims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithoutClaimsValidation())
	if _, err := p.ParseWithClaims(tok, &c, a.key); err != nil {
		return "", "", time.Time{}, badRequest("token to deny: " + jwtReason(err))
	}
	if c.ID == "" {
		return "", "", time.Time{}, badRequest("token to deny has no id (jti)")
	}
	if path, err = normalizePrefix(c.Path); err != nil {
		return "", "", time.Time{}, badRequest("token to deny: path claim: " + err.Error())
	}
	if c.ExpiresAt != nil {
		exp = c.ExpiresAt.Time
	}
	return c.ID, path, exp, nil
}
