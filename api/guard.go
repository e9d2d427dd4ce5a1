package api

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// A web page open in any browser on the lab host can send requests to
// 127.0.0.1:8888, and a DNS name that an attacker rebinds to 127.0.0.1 makes
// them look same-origin. The guard refuses what only a browser page could
// send, before any route sees it:
//   - a Host that is not a name vw stream serves (rebinding: the page's
//     requests carry the attacker's name);
//   - a foreign Origin, or Sec-Fetch-Site cross-site/same-site, except on the
//     player pages, which may be linked to from anywhere;
//   - a rule body that is not JSON. A form-urlencoded (or untyped) body is
//     accepted only from a client that sends none of the headers browsers
//     add to every cross-site POST (Origin, Sec-Fetch-Site, Sec-Fetch-Mode):
//     that is what curl -d sends, and the original tool's sessions use it.
//
// ffmpeg sends its own Host and no Origin; the preview page sends its own
// origin. Both pass.

// hostAllowed reports whether the Host header names this server: a loopback
// name or address, the address vw stream listens on, or one of
// VW_ALLOWED_HOSTS. When it listens on every address (0.0.0.0), any IP
// literal is accepted as well: rebinding needs a name, and a client that
// reached an address of this machine by IP used that address.
func (s *Server) hostAllowed(hostport string) bool {
	host := strings.ToLower(hostOnly(hostport))
	if host == "" {
		return false
	}
	if host == "localhost" || host == strings.ToLower(s.cfg.ListenHost) {
		return true
	}
	for _, h := range s.cfg.AllowedHosts {
		if strings.EqualFold(strings.TrimSpace(h), host) {
			return true
		}
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	listen := net.ParseIP(s.cfg.ListenHost)
	return listen != nil && (listen.Equal(ip) || listen.IsUnspecified())
}

// hostOnly returns the host of a Host header, without port or IPv6 brackets.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// crossSite reports why r comes from a page of another origin, or "".
func crossSite(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		return fmt.Sprintf("cross-origin request from %q", o)
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "cross-site", "same-site":
		return "request from a page of another site (Sec-Fetch-Site: " + site + ")"
	}
	return ""
}

// sameOrigin reports whether origin is this server's own, as reached
// through host. vw stream speaks plain HTTP; https is accepted for a
// TLS-terminating proxy in front of it, which keeps the Host.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

// fromBrowser reports whether r carries any header a browser adds to a
// cross-site POST; curl, ffmpeg and scripts send none of them.
func fromBrowser(r *http.Request) bool {
	for _, h := range []string{"Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode"} {
		if r.Header.Get(h) != "" {
			return true
		}
	}
	return false
}

// isPage reports whether r asks for a player page or its library: pages may
// be opened from a link on any site; what they then do is same-origin.
func isPage(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return strings.HasPrefix(r.URL.Path, "/play/") || strings.HasPrefix(r.URL.Path, "/lib/")
}

// guard refuses, on every route but /healthcheck, a request for another
// Host (403) or from a page of another origin (403).
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthcheck" {
			next.ServeHTTP(w, r)
			return
		}
		if !s.hostAllowed(r.Host) {
			s.refuse(w, r, http.StatusForbidden, fmt.Errorf("Host %q is not a name vw stream serves: add it to VW_ALLOWED_HOSTS", r.Host))
			return
		}
		if why := crossSite(r); why != "" && !isPage(r) {
			s.refuse(w, r, http.StatusForbidden, fmt.Errorf("%s refused: vw stream answers only its own pages and non-browser clients", why))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireJSON refuses a rule body that is not declared JSON (415), except
// the form-urlencoded or untyped body of a client that is not a browser
// (curl -d, the original tool's sessions). text/plain and multipart, which
// a page can send cross-site without asking, are always refused.
func (s *Server) requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err == nil && mt == "application/json":
		case (ct == "" || (err == nil && mt == "application/x-www-form-urlencoded")) && !fromBrowser(r):
		default:
			s.refuse(w, r, http.StatusUnsupportedMediaType,
				fmt.Errorf("Content-Type %q: send the rule as Content-Type: application/json", ct))
			return
		}
		next.ServeHTTP(w, r)
	})
}
