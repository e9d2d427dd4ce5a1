package auth

import (
	"net/http"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"
)

// Relays of a cluster (package cluster) share what this package decides
// alone on one relay: the deny list, which a relay hands to another that
// joins (Denials) and applies when another denies (Deny, with OnDeny
// telling what to pass on), and the one-time codes, which any relay of the
// cluster may redeem but only the issuer can spend: a relay that shares its
// codes names itself in each (a tag in front), and a code with another
// relay's tag is sent there to be spent (RedeemLocal on the issuer), so it
// opens a stream once, anywhere.

// CodeRedeemer spends on its issuer a code another relay issued, for route;
// it answers what the issuer's RedeemLocal answered.
type CodeRedeemer func(code, route string) (*Grant, error)

// ShareCodes makes every code issued from now on start with tag (URL-safe
// characters, the same length for every relay of a cluster) and sends a
// code that starts with another tag of that length to remote.
func (a *Auth) ShareCodes(tag string, remote CodeRedeemer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.codeTag, a.remoteRedeem = tag, remote
}

// codeSharing returns the tag to put in front of a new code, and remote when
// code (if not empty) was issued by another relay of the cluster.
func (a *Auth) codeSharing(code string) (tag string, remote CodeRedeemer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	tag = a.codeTag
	if tag != "" && code != "" && !strings.HasPrefix(code, tag) && len(code) > len(tag) {
		remote = a.remoteRedeem
	}
	return tag, remote
}

// RedeemLocal spends a code this relay issued, for route, as a handshake
// presenting it here would: whatever the outcome, it cannot be spent again.
// Refusals are *Error.
func (a *Auth) RedeemLocal(code, route string) (*Grant, error) {
	rt, err := parseRoute(route)
	if err != nil {
		return nil, err
	}
	return a.redeemLocal(code, rt)
}

// redeemRemote spends on its issuer a code another relay issued, then
// checks here what this relay knows better or as well: its deny list.
func (a *Auth) redeemRemote(remote CodeRedeemer, code string, rt route) (*Grant, error) {
	g, err := remote(code, rt.path)
	switch {
	case err != nil:
		return nil, err
	case g == nil || g.Route != rt.path:
		return nil, &Error{Code: http.StatusBadGateway, Reason: "the relay that issued the code answered for another route"}
	case a.now().After(g.Expires.Add(Leeway)):
		return nil, unauthorized("token expired")
	case a.Denied(g.ID, g.Path):
		return nil, unauthorized("token id denied")
	}
	return g, nil
}

// Denials returns the deny list's entries in force.
func (a *Auth) Denials() []Denial {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweepDeniedLocked(now, false)
	out := make([]Denial, 0, a.nDenied)
	for _, list := range a.denied {
		for _, d := range list {
			if !now.After(d.Until) {
				out = append(out, d)
			}
		}
	}
	slices.SortFunc(out, func(x, y Denial) int { return strings.Compare(x.JTI+"\x00"+x.Path, y.JTI+"\x00"+y.Path) })
	return out
}

// Adopt puts on the deny list what another relay of a cluster denied (each
// entry's Until kept, but no later than MaxTTL from now), saves the list
// once, and runs the OnDeny hooks for each entry that is new or lasts
// longer than the one it replaces, which it returns. Entries already
// expired or malformed are skipped.
func (a *Auth) Adopt(list []Denial) ([]Denial, error) {
	now := a.now()
	limit := now.Add(a.maxTTL + Leeway)
	var changed []Denial
	for _, d := range list {
		p, err := normalizePrefix(d.Path)
		if err != nil || d.JTI == "" || !now.Before(d.Until) {
			continue
		}
		d.Path = p
		if d.Until.After(limit) {
			d.Until = limit
		}
		if a.covered(d) {
			continue
		}
		kept, err := a.addDenial(now, d, "/")
		if err != nil {
			return changed, err
		}
		changed = append(changed, kept)
	}
	if len(changed) == 0 {
		return nil, nil
	}
	hooks := a.denyHooks()
	for _, d := range changed {
		a.log.WithFields(logrus.Fields{"id": d.JTI, "path": d.Path, "until": d.Until}).Info("relay token id denied by another relay")
		for _, h := range hooks {
			h(d)
		}
	}
	if err := a.persist(); err != nil {
		a.log.WithFields(logrus.Fields{"state": a.statePath, "err": err}).Error("deny list not saved: these denies last only until the relay restarts")
		return changed, err
	}
	return changed, nil
}

// covered reports whether the list holds d's id and path until d.Until or
// later.
func (a *Auth) covered(d Denial) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, old := range a.denied[d.JTI] {
		if old.Path == d.Path && !old.Until.Before(d.Until) {
			return true
		}
	}
	return false
}
