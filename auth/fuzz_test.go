package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"
)

// The seed corpus under testdata/fuzz holds tokens made for this setup:
// signed with another secret, expired, for another audience, HS512, alg
// none, and one valid in every way but its id, which fuzzAuth denies. None
// may ever authorize, however the fuzzer mutates path, query or header.
var fuzzNow = time.Date(2030, 1, 1, 0, 10, 0, 0, time.UTC)

const fuzzDeniedID = "tvJQg7hD3-4OVd2EcO7WXQ"

func fuzzAuth(f *testing.F) *Auth {
	a, err := New(Config{Secret: testSecret, Now: func() time.Time { return fuzzNow }}, nil)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := a.Deny(fuzzDeniedID, "/", fuzzNow.Add(50*time.Minute)); err != nil {
		f.Fatal(err)
	}
	return a
}

// refused fails unless err is a refusal with a documented status.
func refused(t *testing.T, g *Grant, err error) {
	t.Helper()
	if err == nil || g != nil {
		t.Fatalf("authorized: %+v", g)
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %T %v is not an *Error", err, err)
	}
	switch e.Status() {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
	default:
		t.Fatalf("status %d for %v", e.Status(), err)
	}
	if e.Reason == "" || strings.ContainsAny(e.Reason, "\r\n") {
		t.Fatalf("reason %q is not one line", e.Reason)
	}
}

func FuzzAuthorize(f *testing.F) {
	a := fuzzAuth(f)
	f.Fuzz(func(t *testing.T, route, query, authz string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: route, RawQuery: query}, Header: http.Header{}}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		g, err := a.Authorize(r)
		refused(t, g, err)
	})
}

func FuzzVerify(f *testing.F) {
	a := fuzzAuth(f)
	f.Fuzz(func(t *testing.T, token string) {
		g, err := a.Verify(token)
		if err == nil || g != nil {
			t.Fatalf("verified: %+v", g)
		}
		if e, ok := err.(*Error); !ok || e.Status() != http.StatusUnauthorized {
			t.Fatalf("error %v: want a 401 *Error", err)
		}
	})
}

// FuzzParseRoute checks what an accepted route promises: it is a clean
// path, so the name matched against a prefix is the topic the relay uses,
// and /in/{x} and /out/{x} meet on the one topic /out/{x}.
func FuzzParseRoute(f *testing.F) {
	f.Fuzz(func(t *testing.T, p string) {
		rt, err := parseRoute(p)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Status() != http.StatusBadRequest {
				t.Fatalf("error %v: want a 400 *Error", err)
			}
			return
		}
		if path.Clean(p) != p || p == "/" || rt.path != p || rt.name == "" || !strings.HasSuffix(p, "/"+rt.name) {
			t.Fatalf("accepted %q as %+v", p, rt)
		}
		if strings.HasPrefix(rt.name, "/") || strings.HasSuffix(rt.name, "/") || len(rt.needs) == 0 {
			t.Fatalf("accepted %q as %+v", p, rt)
		}
		first, _, _ := strings.Cut(rt.name, "/")
		if in := covers("lab1/", rt.name); in != (first == "lab1") {
			t.Fatalf("covers(lab1/, %q) = %v", rt.name, in)
		}
		want := p
		switch rt.role {
		case Publisher:
			want = "/out/" + strings.TrimPrefix(p, "/in/")
		case Viewer, Peer:
		default:
			t.Fatalf("%q: no role", p)
		}
		if rt.topic != want || path.Clean(rt.topic) != rt.topic {
			t.Fatalf("%s %q on topic %q, want %q", rt.role, p, rt.topic, want)
		}
		if (rt.role == Viewer) != strings.HasPrefix(p, "/out/") || (rt.role == Publisher) != strings.HasPrefix(p, "/in/") {
			t.Fatalf("%q has role %s", p, rt.role)
		}
	})
}

// FuzzDenyBody: any body posted to /api/deny by an admin is denied exactly as
// reported or refused with 400; nothing panics.
func FuzzDenyBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body string) {
		a, err := New(Config{Secret: testSecret, Now: func() time.Time { return fuzzNow }}, nil)
		if err != nil {
			t.Fatal(err)
		}
		admin, err := a.Mint("/", []string{ScopeAdmin}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, DenyPath, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+admin)
		w := httptest.NewRecorder()
		a.DenyHandler().ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			var res DenyResponse
			if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res.Denied == "" {
				t.Fatalf("200 with %q: %v", w.Body, err)
			}
			if !res.Until.After(fuzzNow) || res.Until.After(fuzzNow.Add(DefaultMaxTTL+Leeway)) {
				t.Fatalf("until %v outside (now, now+MaxTTL]", res.Until)
			}
			if !a.Denied(res.Denied, res.Path) {
				t.Fatalf("reported %q denied, but it is not", res.Denied)
			}
		case http.StatusBadRequest:
			var e map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["error"] == "" {
				t.Fatalf("400 with %q", w.Body)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}
