package crossbar

import "testing"

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		path  string
		role  Role
		topic string
		bad   bool
	}{
		{path: "/in/cam", role: Publisher, topic: "/out/cam"},
		{path: "/in/lab1/cam/front", role: Publisher, topic: "/out/lab1/cam/front"},
		{path: "/out/cam", role: Viewer, topic: "/out/cam"},
		{path: "/bi/lab1/api", role: Peer, topic: "/bi/lab1/api"},
		{path: "/in", role: Peer, topic: "/in"},
		{path: "/", role: Peer, topic: "/"},
		{path: "/in/", bad: true},
		{path: "/out/", bad: true},
		{path: "/out/a/", bad: true},
		{path: "/in/a/../b", bad: true},
		{path: "//x", bad: true},
		{path: "", bad: true},
		{path: "x", bad: true},
	} {
		rt, err := parseRoute(tc.path)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted as %+v, want refused", tc.path, rt)
			}
			continue
		}
		if err != nil || rt.role != tc.role || rt.topic != tc.topic {
			t.Errorf("%q: %+v %v, want %s on %s", tc.path, rt, err, tc.role, tc.topic)
		}
	}
}

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
