package crossbar

import "testing"

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
