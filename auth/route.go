package auth

import (
	"fmt"
	"strings"
)

// Role is what a client does on its route, decided here from the path so
// that the relay never reads a path itself.
type Role string

const (
	// Publisher sends a stream on /in/{x}, into the topic /out/{x}; it
	// receives nothing. Needs scope write.
	Publisher Role = "publisher"
	// Viewer receives a stream on /out/{x}; what it sends is dropped. Needs
	// scope read, or a public prefix.
	Viewer Role = "viewer"
	// Peer is a client of any other route (/bi/{x}, or a bare path): it
	// receives what every other peer sends. Needs scopes read and write.
	Peer Role = "peer"
)

// route is a relay URL path taken apart.
type route struct {
	path  string // the whole path, "/in/lab1/cam"
	name  string // path without "/" and one leading in/, out/ or bi/ segment: "lab1/cam"
	role  Role
	topic string // the relay topic: /out/{x} for both ends of a stream, else path
	needs []string
}

const maxRouteLen = 1024

// parseRoute accepts only canonical paths, so that the name checked against
// a token's prefix is the topic the relay uses: "/out/lab1/../lab2" or
// "/out/lab1//x" would otherwise pass a lab1/ check and could name another
// lab's topic after someone cleans the path.
func parseRoute(p string) (route, error) {
	if len(p) > maxRouteLen {
		return route{}, badRequest(fmt.Sprintf("route longer than %d bytes", maxRouteLen))
	}
	if !strings.HasPrefix(p, "/") {
		return route{}, badRequest("route must start with /")
	}
	if err := checkSegments(p[1:]); err != nil {
		return route{}, badRequest("route " + err.Error())
	}
	rt := route{path: p, name: p[1:], role: Peer, topic: p}
	first, rest, _ := strings.Cut(rt.name, "/")
	switch first {
	case "in":
		rt.role, rt.name, rt.topic = Publisher, rest, "/out/"+rest
	case "out":
		rt.role, rt.name = Viewer, rest
	case "bi":
		rt.name = rest
	}
	if rt.name == "" {
		return route{}, badRequest("route " + p + " names no topic")
	}
	switch rt.role {
	case Publisher:
		rt.needs = []string{ScopeWrite}
	case Viewer:
		rt.needs = []string{ScopeRead}
	default:
		rt.needs = []string{ScopeRead, ScopeWrite}
	}
	return rt, nil
}

// grant fills in what g allows on rt: its route, role and topic.
func (rt route) grant(g *Grant) *Grant {
	g.Route, g.Role, g.Topic = rt.path, rt.role, rt.topic
	return g
}

// checkSegments refuses empty, "." and ".." segments and control bytes.
func checkSegments(s string) error {
	if s == "" {
		return fmt.Errorf("is empty")
	}
	for _, seg := range strings.Split(s, "/") {
		switch seg {
		case "":
			return fmt.Errorf("has an empty segment (// or a trailing /)")
		case ".", "..":
			return fmt.Errorf("has a %q segment", seg)
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return fmt.Errorf("has a control character")
		}
	}
	return nil
}

// normalizePrefix turns "lab1", "/lab1" or "lab1/" into "lab1/"; "/" stays
// "/" (every route). Anything else that is not a clean path is refused, the
// empty string too, so a token without a path claim covers nothing.
func normalizePrefix(p string) (string, error) {
	if p == "/" {
		return p, nil
	}
	s := strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
	if err := checkSegments(s); err != nil {
		return "", fmt.Errorf("prefix %w (use / for every route)", err)
	}
	return s + "/", nil
}

// covers matches whole segments: "lab1/" covers "lab1" and "lab1/cam" but not
// "lab10/cam"; "/" covers everything.
func covers(prefix, name string) bool {
	return prefix == "/" || strings.HasPrefix(name+"/", prefix)
}
