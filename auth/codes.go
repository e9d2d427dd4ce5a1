package auth

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Codes from the access point are few and short-lived, but each is memory
// held for CodeTTL, so no one client may hold many: at most maxPer
// outstanding (issued, not yet used, not expired) per token id and per
// client address, and maxCodes in all. A player spends its code within
// moments of getting it, so even a class sharing one token and one NAT
// address stays far below the per-client cap.

// DefaultMaxCodesPerClient is the default of Config.MaxCodesPerClient.
const DefaultMaxCodesPerClient = 20

// codeEntry is one outstanding code: good once, on route, until expires.
type codeEntry struct {
	route   string
	grant   Grant
	addr    string // the client address it was issued to
	expires time.Time
}

// codeTable holds the outstanding codes and who holds them.
type codeTable struct {
	ttl    time.Duration
	maxPer int

	mu        sync.Mutex
	codes     map[string]codeEntry
	byID      map[string][]string // token id -> its outstanding codes
	byAddr    map[string][]string // client address -> its outstanding codes
	lastSweep time.Time
}

func newCodeTable(ttl time.Duration, maxPer int) *codeTable {
	return &codeTable{
		ttl:    ttl,
		maxPer: maxPer,
		codes:  make(map[string]codeEntry),
		byID:   make(map[string][]string),
		byAddr: make(map[string][]string),
	}
}

// add stores code for e unless e's token id or address already holds
// maxPer codes (429) or the table is full (503).
func (t *codeTable) add(now time.Time, code string, e codeEntry) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(now, false)
	t.expireLocked(now, t.byID[e.grant.ID])
	t.expireLocked(now, t.byAddr[e.addr])
	if n := len(t.byID[e.grant.ID]); n >= t.maxPer {
		return &Error{Code: http.StatusTooManyRequests, Reason: fmt.Sprintf("this token holds %d unused codes, the most allowed; use one or wait %v", n, t.ttl)}
	}
	if n := len(t.byAddr[e.addr]); n >= t.maxPer {
		return &Error{Code: http.StatusTooManyRequests, Reason: fmt.Sprintf("%s holds %d unused codes, the most allowed; use one or wait %v", e.addr, n, t.ttl)}
	}
	if len(t.codes) >= maxCodes {
		t.sweepLocked(now, true)
		if len(t.codes) >= maxCodes {
			return &Error{Code: http.StatusServiceUnavailable, Reason: "too many outstanding codes; retry shortly"}
		}
	}
	t.codes[code] = e
	t.byID[e.grant.ID] = append(t.byID[e.grant.ID], code)
	t.byAddr[e.addr] = append(t.byAddr[e.addr], code)
	return nil
}

// take removes code and returns its entry, expired or not.
func (t *codeTable) take(now time.Time, code string) (codeEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.codes[code]
	if ok {
		t.removeLocked(code, e)
	}
	t.sweepLocked(now, false)
	return e, ok
}

// len is how many codes are outstanding, expired ones not yet swept
// included.
func (t *codeTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.codes)
}

// removeLocked forgets code, which is e, everywhere.
func (t *codeTable) removeLocked(code string, e codeEntry) {
	delete(t.codes, code)
	drop := func(m map[string][]string, k string) {
		list := slices.DeleteFunc(m[k], func(c string) bool { return c == code })
		if len(list) == 0 {
			delete(m, k)
		} else {
			m[k] = list
		}
	}
	drop(t.byID, e.grant.ID)
	drop(t.byAddr, e.addr)
}

// expireLocked removes the expired codes among list (one holder's, at most
// maxPer long), so that a holder's count is exact when it is checked.
func (t *codeTable) expireLocked(now time.Time, list []string) {
	var gone []string
	for _, c := range list {
		if e := t.codes[c]; now.After(e.expires) {
			gone = append(gone, c)
		}
	}
	for _, c := range gone {
		t.removeLocked(c, t.codes[c])
	}
}

// sweepLocked drops every expired code, at most once per ttl unless forced,
// so the work is amortized over the calls that grow the table.
func (t *codeTable) sweepLocked(now time.Time, force bool) {
	if d := now.Sub(t.lastSweep); !force && d >= 0 && d < t.ttl {
		return
	}
	t.lastSweep = now
	for c, e := range t.codes {
		if now.After(e.expires) {
			t.removeLocked(c, e)
		}
	}
}

// remoteIP is the client address of r: the host part of RemoteAddr, which a
// relay behind a trusted proxy has already set from X-Forwarded-For.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// CodeCounts returns how many access codes were issued, and how many were
// redeemed: presented once, in time, for their route, by a token still
// good. A code presented again, late or elsewhere is refused, not counted.
func (a *Auth) CodeCounts() (issued, redeemed uint64) {
	return a.codesIssued.Load(), a.codesRedeemed.Load()
}
