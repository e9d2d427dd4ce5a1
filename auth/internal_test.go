package auth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
)

var testSecret = []byte("test-secret-for-the-vw-relay-012")

type testClock = testutil.Clock

func newTestAuth(t *testing.T, cfg Config) (*Auth, *testClock) {
	t.Helper()
	c := testutil.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg.Secret = testSecret
	cfg.Now = c.Now
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

// TestParseRoute: what a path means, decided once for auth and the relay:
// the name a token's prefix must cover, the role, the topic it joins, and
// the scopes it needs; and every path that is not canonical is a 400.
func TestParseRoute(t *testing.T) {
	tests := []struct {
		path  string
		name  string
		role  Role
		topic string
		needs string
		bad   string // substring of the error; "" means accepted
	}{
		{"/in/lab1/cam", "lab1/cam", Publisher, "/out/lab1/cam", "write", ""},
		{"/out/lab1/cam", "lab1/cam", Viewer, "/out/lab1/cam", "read", ""},
		{"/bi/lab1/api", "lab1/api", Peer, "/bi/lab1/api", "read,write", ""},
		{"/lab1/api", "lab1/api", Peer, "/lab1/api", "read,write", ""},
		{"/in/in/x", "in/x", Publisher, "/out/in/x", "write", ""}, // only one leading segment is the direction
		{"/in/out/x", "out/x", Publisher, "/out/out/x", "write", ""},
		{"/inx/y", "inx/y", Peer, "/inx/y", "read,write", ""},
		{"/out/x", "x", Viewer, "/out/x", "read", ""},
		{"/x", "x", Peer, "/x", "read,write", ""},
		{"", "", "", "", "", "start with /"},
		{"out/x", "", "", "", "", "start with /"},
		{"x", "", "", "", "", "start with /"},
		{"/", "", "", "", "", "empty"},
		{"/in", "", "", "", "", "no topic"},
		{"/out", "", "", "", "", "no topic"},
		{"/bi", "", "", "", "", "no topic"},
		{"/in/", "", "", "", "", "empty segment"},
		{"/out/x/", "", "", "", "", "empty segment"},
		{"//out/x", "", "", "", "", "empty segment"},
		{"//x", "", "", "", "", "empty segment"},
		{"/out/lab1//x", "", "", "", "", "empty segment"},
		{"/out/lab1/../lab2", "", "", "", "", `".."`},
		{"/in/a/../b", "", "", "", "", `".."`},
		{"/out/./lab1", "", "", "", "", `"."`},
		{"/out/..", "", "", "", "", `".."`},
		{"/out/a\x00b", "", "", "", "", "control"},
		{"/out/a\nb", "", "", "", "", "control"},
		{"/" + strings.Repeat("a", maxRouteLen), "", "", "", "", "longer"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.path), func(t *testing.T) {
			rt, err := parseRoute(tc.path)
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("got %+v, %v; want error with %q", rt, err, tc.bad)
				}
				if e, ok := err.(*Error); !ok || e.Status() != http.StatusBadRequest {
					t.Fatalf("error %v is not a 400 *Error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rt.path != tc.path || rt.name != tc.name || rt.role != tc.role || rt.topic != tc.topic || strings.Join(rt.needs, ",") != tc.needs {
				t.Fatalf("got %+v", rt)
			}
		})
	}
}

func TestPrefix(t *testing.T) {
	norm := []struct{ in, out, bad string }{
		{"lab1", "lab1/", ""},
		{"lab1/", "lab1/", ""},
		{"/lab1/", "lab1/", ""},
		{"/lab1/cams", "lab1/cams/", ""},
		{"/", "/", ""},
		{"", "", "empty"},
		{"//", "", "empty"},
		{"lab1//x", "", "empty segment"},
		{"lab1/..", "", `".."`},
		{"./lab1", "", `"."`},
	}
	for _, tc := range norm {
		got, err := normalizePrefix(tc.in)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("normalizePrefix(%q) = %q, %v; want error with %q", tc.in, got, err, tc.bad)
			}
			continue
		}
		if err != nil || got != tc.out {
			t.Errorf("normalizePrefix(%q) = %q, %v; want %q", tc.in, got, err, tc.out)
		}
	}
	cov := []struct {
		prefix, name string
		want         bool
	}{
		{"lab1/", "lab1", true},
		{"lab1/", "lab1/cam", true},
		{"lab1/", "lab1/a/b/c", true},
		{"lab1/", "lab10", false},
		{"lab1/", "lab10/cam", false},
		{"lab1/", "lab", false},
		{"lab1/", "xlab1/cam", false},
		{"lab1/cams/", "lab1/cams/front", true},
		{"lab1/cams/", "lab1/camsx", false},
		{"lab1/cams/", "lab1", false},
		{"/", "anything/at/all", true},
	}
	for _, tc := range cov {
		if got := covers(tc.prefix, tc.name); got != tc.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tc.prefix, tc.name, got, tc.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"short secret", Config{Secret: []byte("short")}, "at least 32"},
		{"bad public prefix", Config{Secret: testSecret, Public: []string{"demo/../x"}}, `".."`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error with %q", err, tc.want)
			}
		})
	}
	a, err := New(Config{Secret: testSecret, Public: []string{"", " ", "demo"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(a.public, ","); got != "demo/" {
		t.Fatalf("public %q: empty entries must mean nothing", got)
	}
}

// TestCodesSwept: codes nobody used are dropped once expired, so a flood of
// access calls cannot grow memory; at the cap of the whole table (many
// tokens, many addresses) the access point says 503.
func TestCodesSwept(t *testing.T) {
	a, c := newTestAuth(t, Config{})
	grant := func(i int) (Grant, string) {
		return Grant{ID: fmt.Sprint("id", i), Expires: c.Now().Add(time.Hour)}, fmt.Sprintf("10.%d.%d.1", i/250, i%250)
	}
	for i := 0; i < 100; i++ {
		g, addr := grant(i)
		if _, err := a.issue("/out/x", g, addr); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(DefaultCodeTTL + time.Second)
	g, addr := grant(0)
	if _, err := a.issue("/out/x", g, addr); err != nil {
		t.Fatal(err)
	}
	if n := a.codes.len(); n != 1 {
		t.Fatalf("%d codes outstanding after the others expired, want 1", n)
	}

	for i := 1; i < maxCodes; i++ {
		g, addr := grant(i)
		if _, err := a.issue("/out/x", g, addr); err != nil {
			t.Fatalf("code %d: %v", i, err)
		}
	}
	g, addr = grant(maxCodes)
	_, err := a.issue("/out/x", g, addr)
	if e, ok := err.(*Error); !ok || e.Status() != http.StatusServiceUnavailable {
		t.Fatalf("over the cap: %v, want 503", err)
	}
	c.Advance(DefaultCodeTTL + time.Second)
	if _, err := a.issue("/out/x", g, addr); err != nil {
		t.Fatalf("after expiry the cap must free up: %v", err)
	}
	a.codes.mu.Lock()
	ids, addrs := len(a.codes.byID), len(a.codes.byAddr)
	a.codes.mu.Unlock()
	if ids != 1 || addrs != 1 {
		t.Fatalf("holders left after the sweep: %d ids, %d addresses; want 1 and 1", ids, addrs)
	}
}

// TestCodesPerClient: one token id, or one address, holds at most
// MaxCodesPerClient unused codes (429 beyond); a code spent or expired
// frees its place; other tokens and addresses are not affected.
func TestCodesPerClient(t *testing.T) {
	a, c := newTestAuth(t, Config{MaxCodesPerClient: 3})
	rt, err := parseRoute("/out/lab1/cam")
	if err != nil {
		t.Fatal(err)
	}
	g := func(id string) Grant {
		return Grant{ID: id, Path: "lab1/", Scopes: []string{ScopeRead}, Expires: c.Now().Add(time.Hour)}
	}
	status := func(err error) int {
		if err == nil {
			return 200
		}
		if e, ok := err.(*Error); ok {
			return e.Status()
		}
		return 500
	}
	var codes []string
	for i, tc := range []struct {
		id, addr string
		want     int
	}{
		{"a", "10.0.0.1", 200}, {"a", "10.0.0.2", 200}, {"a", "10.0.0.3", 200},
		{"a", "10.0.0.4", 429}, // the token holds 3
		{"b", "10.0.0.1", 200}, {"c", "10.0.0.1", 200},
		{"d", "10.0.0.1", 429}, // the address holds 3
		{"d", "10.0.0.9", 200},
	} {
		code, err := a.issue(rt.path, g(tc.id), tc.addr)
		if got := status(err); got != tc.want {
			t.Fatalf("code %d (%s from %s): %d %v, want %d", i, tc.id, tc.addr, got, err, tc.want)
		}
		if err == nil {
			codes = append(codes, code)
		}
	}
	if _, err := a.redeem(codes[0], rt); err != nil { // a's, from 10.0.0.1
		t.Fatal(err)
	}
	if _, err := a.issue(rt.path, g("a"), "10.0.0.5"); err != nil {
		t.Fatalf("a spent code must free the token's place: %v", err)
	}
	if _, err := a.issue(rt.path, g("d"), "10.0.0.1"); err != nil {
		t.Fatalf("a spent code must free the address's place: %v", err)
	}
	c.Advance(DefaultCodeTTL + time.Second)
	for i := 0; i < 3; i++ {
		if _, err := a.issue(rt.path, g("a"), "10.0.1.1"); err != nil {
			t.Fatalf("expired codes must free the token's places: %v", err)
		}
	}
}

func TestDenyBounded(t *testing.T) {
	a, c := newTestAuth(t, Config{})
	for i := 0; i < maxDenied; i++ {
		if _, err := a.Deny(fmt.Sprint(i), "/", c.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := a.Deny("one more", "/", time.Time{})
	if e, ok := err.(*Error); !ok || e.Status() != http.StatusServiceUnavailable {
		t.Fatalf("deny over the cap: %v, want 503", err)
	}
	if _, err := a.Deny("0", "/", c.Now().Add(time.Hour)); err != nil {
		t.Fatalf("re-denying a listed id must work at the cap: %v", err)
	}
	c.Advance(time.Minute + Leeway + time.Second)
	if _, err := a.Deny("one more", "/", time.Time{}); err != nil {
		t.Fatalf("after expiry the cap must free up: %v", err)
	}
	a.mu.Lock()
	n := a.nDenied
	a.mu.Unlock()
	if n != 2 { // "0" (extended) and "one more"
		t.Fatalf("%d deny entries, want 2", n)
	}
}

// TestCodeOnce: many clients racing to redeem the same codes, while ids are
// being denied: each code authorizes at most once, and exactly once when its
// token is not denied.
func TestCodeOnce(t *testing.T) {
	a, c := newTestAuth(t, Config{})
	rt, err := parseRoute("/out/lab1/cam")
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	codes := make([]string, n)
	for i := range codes {
		g := Grant{ID: fmt.Sprint("id", i), Expires: c.Now().Add(time.Hour), Path: "lab1/", Scopes: []string{ScopeRead}}
		if codes[i], err = a.issue(rt.path, g, fmt.Sprint("192.0.2.", i)); err != nil {
			t.Fatal(err)
		}
	}
	var wins [n]atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, code := range codes {
				if _, err := a.redeem(code, rt); err == nil {
					wins[i].Add(1)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := n - 1; i >= n-10; i-- {
			_, _ = a.Deny(fmt.Sprint("id", i), "lab1/", time.Time{})
		}
	}()
	wg.Wait()
	for i := range wins {
		w := wins[i].Load()
		if w > 1 || (i < n-10 && w != 1) {
			t.Fatalf("code %d authorized %d times", i, w)
		}
	}
}

// TestAuthorizeRequest covers request shapes that a websocket dialer would
// not send, straight through Authorize.
func TestAuthorizeRequest(t *testing.T) {
	a, _ := newTestAuth(t, Config{})
	tok, err := a.Mint("lab1/", []string{"read"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		hdr    []string
		status int
	}{
		{"two Authorization headers", []string{"Bearer " + tok, "Bearer " + tok}, 401},
		{"huge token", []string{"Bearer " + strings.Repeat("a", maxTokenLen+1)}, 401},
		{"token with spaces around", []string{"  Bearer   " + tok + "  "}, 0},
		{"scheme only", []string{"Bearer"}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/out/lab1/cam", nil)
			r.Header["Authorization"] = tc.hdr
			g, err := a.Authorize(r)
			if tc.status == 0 {
				if err != nil || g.Route != "/out/lab1/cam" || g.ID == "" {
					t.Fatalf("got %+v, %v", g, err)
				}
				return
			}
			if e, ok := err.(*Error); !ok || e.Status() != tc.status || g != nil {
				t.Fatalf("got %+v, %v; want %d", g, err, tc.status)
			}
		})
	}
}

// TestDenyPerAdmin: one lab's admin keeps at most maxDeniedPerAdmin entries
// under its path, so the list has room left for every other lab; the
// relay-wide admin is bound only by the whole list.
func TestDenyPerAdmin(t *testing.T) {
	a, c := newTestAuth(t, Config{})
	exp := c.Now().Add(time.Hour)
	for i := 0; i < maxDeniedPerAdmin; i++ {
		if _, err := a.denyAs("lab1/", fmt.Sprint("junk", i), "lab1/", exp); err != nil {
			t.Fatal(err)
		}
	}
	_, err := a.denyAs("lab1/", "one more", "lab1/cam", exp)
	if e, ok := err.(*Error); !ok || e.Status() != http.StatusTooManyRequests {
		t.Fatalf("lab1's admin over its share: %v, want 429", err)
	}
	if _, err := a.denyAs("lab1/", "junk0", "lab1/", exp.Add(time.Hour)); err != nil {
		t.Fatalf("lengthening an entry at the cap: %v", err)
	}
	if _, err := a.denyAs("lab2/", "x", "lab2/", exp); err != nil {
		t.Fatalf("lab2's admin after lab1's filled its share: %v", err)
	}
	if _, err := a.Deny("y", "lab1/", exp); err != nil {
		t.Fatalf("the relay-wide admin: %v", err)
	}
}

// TestWatchable: who may watch without a token, as the relay's index asks:
// a stream under a public prefix (whole segments), anything on an open
// relay; never a publishing or bidirectional route.
func TestWatchable(t *testing.T) {
	a, _ := newTestAuth(t, Config{Public: []string{"demo/", "labs/open/"}})
	open, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		topic      string
		want, open bool
	}{
		{"/out/demo/cam", true, true},
		{"/out/demo", true, true},
		{"/out/labs/open/cam", true, true},
		{"/out/labs/closed/cam", false, true},
		{"/out/demo2/cam", false, true},
		{"/out/lab1/cam", false, true},
		{"/in/demo/cam", false, true},
		{"/bi/demo/api", false, true},
		{"/demo/chat", false, true},
		{"/out/demo/../lab1", false, true},
	} {
		if got := a.Watchable(tc.topic); got != tc.want {
			t.Errorf("Watchable(%q) = %v, want %v", tc.topic, got, tc.want)
		}
		if got := open.Watchable(tc.topic); got != tc.open {
			t.Errorf("open relay: Watchable(%q) = %v, want %v", tc.topic, got, tc.open)
		}
	}
}

// TestGrantExpired: a live connection's token runs out Leeway after its exp,
// as a handshake's does; an anonymous grant never runs out.
func TestGrantExpired(t *testing.T) {
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	g := &Grant{ID: "x", Expires: exp}
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{
		{exp.Add(-time.Hour), false},
		{exp.Add(Leeway), false},
		{exp.Add(Leeway + time.Second), true},
	} {
		if got := g.Expired(tc.now); got != tc.want {
			t.Errorf("Expired at exp%+v = %v, want %v", tc.now.Sub(exp), got, tc.want)
		}
	}
	if (&Grant{Anonymous: true}).Expired(exp.Add(1000 * time.Hour)) {
		t.Error("an anonymous grant expired")
	}
}
