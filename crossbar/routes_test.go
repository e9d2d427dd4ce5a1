package crossbar

import "testing"

func TestPrefersHTML(t *testing.T) {
	for _, tc := range []struct {
		accept string
		html   bool
	}{
		{"", false},
		{"*/*", false},
		{"application/json", false},
		{"text/html", true},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8", true},
		{"application/json, text/html;q=0.9", false},
		{"text/html;q=0.9, application/json;q=0.5", true},
		{"text/html;q=0", false},
		{"garbage;;;", false},
	} {
		if got := prefersHTML(tc.accept); got != tc.html {
			t.Errorf("%q: prefersHTML %v, want %v", tc.accept, got, tc.html)
		}
	}
}
