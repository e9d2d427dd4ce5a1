package crossbar

import (
	"path"
	"strings"
	"testing"
)

// FuzzParseRoute checks that any request path either is refused or maps to
// a clean topic, with /in/ and /out/ of the same name on the same topic.
func FuzzParseRoute(f *testing.F) {
	f.Fuzz(func(t *testing.T, p string) {
		rt, err := parseRoute(p)
		if err != nil {
			return
		}
		if path.Clean(rt.topic) != rt.topic || !strings.HasPrefix(rt.topic, "/") {
			t.Fatalf("%q maps to an unclean topic %q", p, rt.topic)
		}
		switch rt.role {
		case Publisher:
			if rt.topic != "/out/"+strings.TrimPrefix(p, "/in/") {
				t.Fatalf("publisher %q on topic %q", p, rt.topic)
			}
		case Viewer, Peer:
			if rt.topic != p {
				t.Fatalf("%s %q on topic %q", rt.role, p, rt.topic)
			}
		default:
			t.Fatalf("%q: no role", p)
		}
	})
}

// FuzzPrefersHTML checks that any Accept header is answered without a panic
// and that adding a top-ranked JSON never makes the answer HTML.
func FuzzPrefersHTML(f *testing.F) {
	f.Fuzz(func(t *testing.T, accept string) {
		_ = prefersHTML(accept)
		if prefersHTML("application/json;q=1,"+accept) && !prefersHTML(accept) {
			t.Fatalf("adding JSON to %q made HTML preferred", accept)
		}
	})
}
