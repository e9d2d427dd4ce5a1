package auth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/internal/testutil"
)

// FuzzRelayRoute checks that the relay and auth read every path alike: for
// any path a client can send, the real relay refuses the handshake with
// Authorize's status and reason, or admits the client in the role and on
// the topic of Authorize's grant (and of the README, which dial checks).
// The token reaches every route, so that only the path decides.
func FuzzRelayRoute(f *testing.F) {
	r := newRelay(f, auth.Config{Secret: secret}, false)
	hdr := bearerHdr(mint(f, r.a, "/", "read,write", time.Hour))
	f.Fuzz(func(t *testing.T, p string) {
		u := url.URL{Scheme: "ws", Host: r.srv.Listener.Addr().String(), Path: p}
		if !strings.HasPrefix(p, "/") || !reachesAsIs(u.String(), p) {
			t.Skip("no request line carries this path as it is")
		}
		g, err := r.a.Authorize(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: p}, Header: hdr.Clone()})
		c, st, reason := r.dial(t, u.String(), hdr)
		if err != nil {
			e, ok := err.(*auth.Error)
			if !ok || st != e.Status() || reason != e.Reason {
				t.Fatalf("%q: the relay answered %d %q, auth %v", p, st, reason, err)
			}
			return
		}
		if st != http.StatusSwitchingProtocols {
			t.Fatalf("%q: the relay refused with %d %q, auth granted %+v", p, st, reason, g)
		}
		for _, cs := range r.onPath(p) {
			if cs.Role != g.Role || cs.Topic != g.Topic {
				t.Fatalf("%q: the relay has a %s on %s, auth granted a %s on %s", p, cs.Role, cs.Topic, g.Role, g.Topic)
			}
		}
		_ = c.Close()
		testutil.Eventually(t, 5*time.Second, func() bool { return len(r.onPath(p)) == 0 }, "%q: the client stays", p)
	})
}

// reachesAsIs reports whether a dialer given rawURL sends a request line
// whose path the server reads back as p.
func reachesAsIs(rawURL, p string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	sent, err := url.ParseRequestURI(u.RequestURI())
	return err == nil && sent.Path == p
}
