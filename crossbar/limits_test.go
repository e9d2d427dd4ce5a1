package crossbar

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
)

// try dials path from the loopback address ip with the headers and returns
// the connection (closed when the test ends) or the refusal's status and
// reason.
func (r *relay) try(t testing.TB, ip, path string, hdr http.Header) (*websocket.Conn, int, string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	ws := websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	c, resp, err := ws.Dial(r.ws+path, hdr)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
		return c, http.StatusSwitchingProtocols, ""
	}
	if resp == nil {
		t.Fatalf("dial %s from %s: %v", path, ip, err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" {
		t.Fatalf("dial %s from %s: %d without a JSON reason: %v", path, ip, resp.StatusCode, err)
	}
	return nil, resp.StatusCode, e.Error
}

func xff(v string) http.Header { return http.Header{"X-Forwarded-For": {v}} }

// remotes lists the remote addresses /stats gives a topic's clients.
func (r *relay) remotes(name string) string {
	var out []string
	for _, c := range r.topic(name).Clients {
		out = append(out, c.Remote)
	}
	return strings.Join(out, " ")
}

func TestClientAddr(t *testing.T) {
	ps, err := ParseProxies([]string{"10.0.0.0/8", " 192.0.2.1 ", "", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"198.51.100.1", []string{"203.0.113.7"}, "198.51.100.1"}, // not a proxy: its header means nothing
		{"192.0.2.1", nil, "192.0.2.1"},                           // the proxy itself (a health check)
		{"192.0.2.1", []string{"203.0.113.7"}, "203.0.113.7"},
		{"192.0.2.1", []string{"6.6.6.6, 203.0.113.7"}, "203.0.113.7"}, // the client wrote 6.6.6.6
		{"192.0.2.1", []string{"6.6.6.6", "203.0.113.7"}, "203.0.113.7"},
		{"192.0.2.1", []string{"203.0.113.7, 10.1.2.3"}, "203.0.113.7"}, // through two of ours
		{"192.0.2.1", []string{"10.9.9.9, 10.1.2.3"}, "10.9.9.9"},       // all ours: the first
		{"192.0.2.1", []string{"203.0.113.7:5123"}, "203.0.113.7"},
		{"192.0.2.1", []string{"[2001:db9::1]:443"}, "2001:db9::1"},
		{"192.0.2.1", []string{"2001:db9::1, 2001:db8::5"}, "2001:db9::1"},
		{"192.0.2.1", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"192.0.2.1", []string{"203.0.113.7, unknown"}, "192.0.2.1"}, // unreadable: stop at what we trust
		{"192.0.2.1", []string{"garbage, 10.1.2.3"}, "10.1.2.3"},
	} {
		got := proxies(ps).clientAddr(netip.MustParseAddr(tc.peer), tc.xff)
		if got.String() != tc.want {
			t.Errorf("from %s with %q: %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
	if _, err := ParseProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad CIDR was accepted")
	}
	if _, err := ParseProxies([]string{"proxy.example"}); err == nil {
		t.Error("a host name was accepted")
	}
}

// TestBehindProxy: with the proxy trusted, the per-address cap counts each
// client by its X-Forwarded-For address, so a relay behind a proxy is not
// capped as one client, and a client cannot escape its count by writing
// addresses of its own in front; a connection from anywhere else is its own
// address, whatever header it sends.
func TestBehindProxy(t *testing.T) {
	proxies, err := ParseProxies([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, Config{MaxConnsPerAddr: 2, TrustedProxies: proxies})
	const proxy = "127.0.0.1"
	for i, tc := range []struct {
		from, xff string
		status    int
	}{
		{proxy, "203.0.113.7", 101},
		{proxy, "203.0.113.7", 101},
		{proxy, "203.0.113.7", 429},
		{proxy, "198.51.100.1, 203.0.113.7", 429}, // the client prepended a fake
		{proxy, "203.0.113.8", 101},
		{proxy, "203.0.113.9", 101},
		{"127.0.0.2", "203.0.113.10", 101}, // not the proxy: counted as 127.0.0.2
		{"127.0.0.2", "203.0.113.11", 101},
		{"127.0.0.2", "203.0.113.12", 429},
	} {
		_, st, reason := r.try(t, tc.from, "/out/lab1/cam", xff(tc.xff))
		if st != tc.status {
			t.Fatalf("connection %d from %s as %s: %d %q, want %d", i, tc.from, tc.xff, st, reason, tc.status)
		}
		if st == 429 && !strings.Contains(reason, "203.0.113.7") && !strings.Contains(reason, "127.0.0.2") {
			t.Fatalf("connection %d: reason %q names neither client", i, reason)
		}
	}
	r.waitClients(t, "/out/lab1/cam", 0, 6, 0)
	got := strings.Fields(r.remotes("/out/lab1/cam"))
	if len(got) != 6 || strings.Join(got[:4], " ") != "203.0.113.7 203.0.113.7 203.0.113.8 203.0.113.9" ||
		!strings.HasPrefix(got[4], "127.0.0.2:") || !strings.HasPrefix(got[5], "127.0.0.2:") {
		t.Fatalf("/stats gives the clients as %q, want the forwarded addresses for the proxy's", got)
	}
}

// TestConnsPerToken: connections with a token count against the token, not
// the address, so a class behind one NAT can watch with its tokens; past
// MaxConnsPerToken a token gets 429 while another token still connects;
// anonymous connections from the same address keep their own cap.
func TestConnsPerToken(t *testing.T) {
	r := startAuthRelay(t, Config{MaxConnsPerAddr: 2, MaxConnsPerToken: 3})
	class, other := r.mint(t, "lab1/", "read"), r.mint(t, "lab1/", "read")
	for i := 0; i < 3; i++ {
		if _, st, reason := r.try(t, "127.0.0.1", "/out/lab1/cam", bearer(class)); st != 101 {
			t.Fatalf("connection %d with one token from one address: %d %s", i, st, reason)
		}
	}
	if _, st, reason := r.try(t, "127.0.0.1", "/out/lab1/cam", bearer(class)); st != 429 || !strings.Contains(reason, "this token") {
		t.Fatalf("a 4th connection of the token: %d %q, want 429", st, reason)
	}
	if _, st, reason := r.try(t, "127.0.0.1", "/out/lab1/cam", bearer(other)); st != 101 {
		t.Fatalf("another token from the same address: %d %s", st, reason)
	}
	// The code a token trades for counts against the token too.
	if _, st, _ := r.try(t, "127.0.0.1", r.code(t, "/out/lab1/cam", class), nil); st != 429 {
		t.Fatalf("the full token's code: %d, want 429", st)
	}
	for i := 0; i < 2; i++ {
		if _, st, reason := r.try(t, "127.0.0.1", "/out/demo/cam", nil); st != 101 {
			t.Fatalf("anonymous connection %d: %d %s", i, st, reason)
		}
	}
	if _, st, reason := r.try(t, "127.0.0.1", "/out/demo/cam", nil); st != 429 || !strings.Contains(reason, "without a token") {
		t.Fatalf("a 3rd anonymous connection from one address: %d %q, want 429", st, reason)
	}
}

// TestRelayWideCaps: MaxConns and MaxTopics hold whoever asks (503), and
// a place freed is taken again.
func TestRelayWideCaps(t *testing.T) {
	r := startRelay(t, Config{MaxConns: 3, MaxTopics: 2})
	a, _, _ := r.try(t, "127.0.0.1", "/out/a", nil)
	r.try(t, "127.0.0.2", "/out/b", nil)
	if _, st, reason := r.try(t, "127.0.0.3", "/out/c", nil); st != 503 || !strings.Contains(reason, "topics") {
		t.Fatalf("a 3rd topic: %d %q, want 503", st, reason)
	}
	if _, st, reason := r.try(t, "127.0.0.3", "/out/a", nil); st != 101 {
		t.Fatalf("joining a topic at the topic cap: %d %s", st, reason)
	}
	if _, st, reason := r.try(t, "127.0.0.4", "/out/b", nil); st != 503 || !strings.Contains(reason, "connections") {
		t.Fatalf("a 4th connection: %d %q, want 503", st, reason)
	}
	_ = a.Close()
	testutil.Eventually(t, 5*time.Second, func() bool { return len(r.topic("/out/a").Clients) == 1 }, "the closed connection is still counted")
	if _, st, reason := r.try(t, "127.0.0.4", "/out/b", nil); st != 101 {
		t.Fatalf("after one left: %d %s", st, reason)
	}
}
