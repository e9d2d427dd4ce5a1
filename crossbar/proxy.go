package crossbar

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Behind a reverse proxy every connection comes from the proxy, so per-address
// limits would cap the whole relay. For a connection from a trusted proxy the
// client address is read from X-Forwarded-For instead: each proxy appends the
// address it was connected from, so the list is read from the right, past
// the relay's own proxies, and the first address that is not one of them is
// the client. Whatever lies further left was written by the client itself
// and is ignored. A connection from anywhere else is its own address,
// whatever it sends.

// ParseProxies reads trusted proxy entries, each a CIDR ("10.0.0.0/8") or
// one address ("192.0.2.10"), as VW_RELAY_TRUSTED_PROXIES lists them.
func ParseProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue // "a,b," from an env var: an empty entry trusts nothing
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want an address or a CIDR such as 10.0.0.0/8", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// proxies are the trusted proxies.
type proxies []netip.Prefix

func (ps proxies) trusts(a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr returns the client address of a request whose connection
// comes from peer: peer itself unless it is a trusted proxy, else the
// rightmost untrusted address of X-Forwarded-For (the leftmost if all are
// trusted; the last trusted one if the list has something unreadable).
func (ps proxies) clientAddr(peer netip.Addr, xff []string) netip.Addr {
	client := peer
	if !ps.trusts(client) {
		return client
	}
	hops := strings.Split(strings.Join(xff, ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return client
		}
		client = a
		if !ps.trusts(a) {
			return client
		}
	}
	return client
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a
// port, IPv6 possibly in brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// withClientAddr sets RemoteAddr of a request that came through a trusted
// proxy to the client's address (with no port), so that every limit and log line after it
// sees the client. Without trusted proxies it is h.
func (s *Server) withClientAddr(h http.Handler) http.Handler {
	ps := proxies(s.cfg.TrustedProxies)
	if len(ps) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		peer, err := netip.ParseAddr(host)
		if err != nil || !ps.trusts(peer.Unmap()) {
			h.ServeHTTP(w, r)
			return
		}
		client := ps.clientAddr(peer.Unmap(), r.Header.Values("X-Forwarded-For"))
		r2 := *r // shallow: only RemoteAddr differs
		// The address alone: the client's port is the proxy's to know.
		r2.RemoteAddr = client.String()
		h.ServeHTTP(w, &r2)
	})
}
