package auth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/auth"
)

// TestAdminSees: an admin token sees the topics under its path and no
// other; only "/" sees everything; an open relay's admin is everyone.
func TestAdminSees(t *testing.T) {
	r := newRelay(t, auth.Config{Secret: secret}, false)
	admin := func(path string) *auth.Grant {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/stats", nil)
		req.Header.Set("Authorization", "Bearer "+mint(t, r.a, path, "admin", time.Hour))
		g, err := r.a.Admin(req)
		if err != nil {
			t.Fatalf("Admin(%s): %v", path, err)
		}
		return g
	}
	topics := []string{"/out/lab1/cam", "/bi/lab1/api", "/lab1/chat", "/out/lab10/cam", "/out/lab2/cam", "/bi/lab2/api", "/out"}
	for _, tc := range []struct {
		path string
		sees []string
	}{
		{"/", topics},
		{"lab1/", []string{"/out/lab1/cam", "/bi/lab1/api", "/lab1/chat"}},
		{"lab1/cam/", []string{"/out/lab1/cam"}},
		{"lab2/", []string{"/out/lab2/cam", "/bi/lab2/api"}},
	} {
		g := admin(tc.path)
		var got []string
		for _, topic := range topics {
			if g.Sees(topic) {
				got = append(got, topic)
			}
		}
		if strings.Join(got, " ") != strings.Join(tc.sees, " ") {
			t.Errorf("admin for %s sees %v, want %v", tc.path, got, tc.sees)
		}
	}

	for _, tc := range []struct {
		name, hdr string
		status    int
	}{
		{"no token", "", 401},
		{"not admin", "Bearer " + mint(t, r.a, "/", "read,write", time.Hour), 403},
		{"garbage", "Bearer x.y.z", 401},
	} {
		req := httptest.NewRequest(http.MethodGet, "/stats", nil)
		if tc.hdr != "" {
			req.Header.Set("Authorization", tc.hdr)
		}
		_, err := r.a.Admin(req)
		if e, ok := err.(*auth.Error); !ok || e.Status() != tc.status {
			t.Errorf("Admin with %s: %v, want %d", tc.name, err, tc.status)
		}
	}

	open, err := auth.New(auth.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := open.Admin(httptest.NewRequest(http.MethodGet, "/stats", nil))
	if err != nil || !g.Sees("/out/lab2/cam") || !g.Anonymous {
		t.Fatalf("open relay: %+v %v, want a relay-wide anonymous admin", g, err)
	}
}

// TestDenyScoped: an admin of lab1 can deny lab1's tokens, and no other
// lab's, however the request names them; the relay-wide admin can deny any.
func TestDenyScoped(t *testing.T) {
	r := newRelay(t, auth.Config{Secret: secret}, false)
	lab1Admin := mint(t, r.a, "lab1/", "admin", time.Hour)
	root := mint(t, r.a, "/", "admin", time.Hour)
	lab1 := mint(t, r.a, "lab1/", "read", time.Hour)
	lab1cam := mint(t, r.a, "lab1/cam", "read", time.Hour)
	lab2 := mint(t, r.a, "lab2/", "read", time.Hour)
	lab10 := mint(t, r.a, "lab10/", "read", time.Hour)
	id2 := jtiOf(t, r.a, lab2)

	for _, tc := range []struct {
		name, tok, body string
		status          int
		path            string // the path the deny answered, on 200
	}{
		{"another lab's token", lab1Admin, fmt.Sprintf(`{"token":%q}`, lab2), 403, ""},
		{"a lab sharing the prefix", lab1Admin, fmt.Sprintf(`{"token":%q}`, lab10), 403, ""},
		{"another lab's id with its path", lab1Admin, fmt.Sprintf(`{"jti":%q,"path":"lab2/"}`, id2), 403, ""},
		{"another lab's id under /", lab1Admin, fmt.Sprintf(`{"jti":%q,"path":"/"}`, id2), 403, ""},
		// Named by id alone, the deny stays within the admin's own path, so
		// it cannot touch lab2's token.
		{"another lab's id alone", lab1Admin, fmt.Sprintf(`{"jti":%q}`, id2), 200, "lab1/"},
		{"own lab's token under a longer path", lab1Admin, fmt.Sprintf(`{"token":%q}`, lab1cam), 200, "lab1/cam/"},
		{"own lab's id with its path", lab1Admin, fmt.Sprintf(`{"jti":%q,"path":"lab1"}`, jtiOf(t, r.a, lab1)), 200, "lab1/"},
	} {
		st, body := r.deny(t, tc.tok, tc.body)
		if st != tc.status || (st == 200 && body["path"] != tc.path) {
			t.Errorf("%s: %d %v, want %d (path %q)", tc.name, st, body, tc.status, tc.path)
		}
		if st == 403 && !strings.Contains(fmt.Sprint(body["error"]), "cannot deny tokens for") {
			t.Errorf("%s: reason %v", tc.name, body["error"])
		}
	}
	for _, tc := range []struct {
		name, route, tok string
		status           int
	}{
		{"lab2's token after lab1's admin tried", "/out/lab2/cam", lab2, 101},
		{"lab10's token", "/out/lab10/cam", lab10, 101},
		{"lab1's denied token", "/out/lab1/cam", lab1, 401},
		{"lab1/cam's denied token", "/out/lab1/cam", lab1cam, 401},
	} {
		if _, st, reason := r.dial(t, r.wsURL(tc.route), bearerHdr(tc.tok)); st != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, st, reason, tc.status)
		}
	}

	if st, body := r.deny(t, root, fmt.Sprintf(`{"token":%q}`, lab2)); st != 200 || body["path"] != "lab2/" {
		t.Fatalf("relay-wide admin denying lab2's token: %d %v", st, body)
	}
	if _, st, _ := r.dial(t, r.wsURL("/out/lab2/cam"), bearerHdr(lab2)); st != 401 {
		t.Fatalf("lab2's token after the relay-wide deny: %d, want 401", st)
	}
}

// TestDenyPastExp: a deny whose token has already expired is a 400, not a
// 200 that does nothing; within Leeway the token still works, so that deny
// is taken.
func TestDenyPastExp(t *testing.T) {
	r := newRelay(t, auth.Config{Secret: secret}, false)
	admin := mint(t, r.a, "/", "admin", 48*time.Hour)
	old := mint(t, r.a, "lab1/", "read", time.Hour)
	now := r.clock.Now()
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"exp an hour ago", fmt.Sprintf(`{"jti":"a","exp":%d}`, now.Add(-time.Hour).Unix()), 400},
		{"exp just past Leeway", fmt.Sprintf(`{"jti":"b","exp":%d}`, now.Add(-auth.Leeway-time.Second).Unix()), 400},
		{"exp within Leeway", fmt.Sprintf(`{"jti":"c","exp":%d}`, now.Add(-auth.Leeway/2).Unix()), 200},
		{"exp ahead", fmt.Sprintf(`{"jti":"d","exp":%d}`, now.Add(time.Hour).Unix()), 200},
	} {
		st, body := r.deny(t, admin, tc.body)
		if st != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.name, st, body, tc.status)
		}
		if st == 400 && !strings.Contains(fmt.Sprint(body["error"]), "in the past") {
			t.Errorf("%s: reason %v", tc.name, body["error"])
		}
	}
	r.clock.Advance(2 * time.Hour)
	if st, body := r.deny(t, admin, fmt.Sprintf(`{"token":%q}`, old)); st != 400 {
		t.Fatalf("denying an expired token: %d %v, want 400", st, body)
	}
}
