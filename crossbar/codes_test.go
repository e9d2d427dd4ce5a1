package crossbar

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/vwlab/vw/auth"
)

// clientFrom is an HTTP client whose connections leave from the loopback
// address ip (any 127.x.y.z is this machine), so that a test can be two
// clients at two addresses.
func clientFrom(t testing.TB, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestAccessCodesPerClient: one token asking for 10,000 codes, from fifty
// addresses, gets auth.DefaultMaxCodesPerClient of them and 429 for the
// rest, while another token still gets codes that work; one address gets as
// many whatever the tokens; a code spent frees a place.
func TestAccessCodesPerClient(t *testing.T) {
	r := startAuthRelay(t, Config{})
	greedy := r.mint(t, "lab1/", "read")
	var bots []*http.Client
	for i := 1; i <= 50; i++ {
		bots = append(bots, clientFrom(t, fmt.Sprintf("127.0.1.%d", i)))
	}
	var codes []string
	refused := 0
	for i := 0; i < 10_000; i++ {
		switch st, code := r.askCode(t, bots[i%len(bots)], "/out/lab1/cam", greedy); st {
		case http.StatusOK:
			codes = append(codes, code)
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("code %d: status %d, want 200 or 429", i, st)
		}
	}
	if len(codes) != auth.DefaultMaxCodesPerClient || refused != 10_000-len(codes) {
		t.Fatalf("one token got %d codes and %d refusals, want %d and the rest 429", len(codes), refused, auth.DefaultMaxCodesPerClient)
	}

	other := r.mint(t, "lab1/", "read")
	st, code := r.askCode(t, clientFrom(t, "127.0.0.2"), "/out/lab1/cam", other)
	if st != http.StatusOK {
		t.Fatalf("another token: %d, want 200", st)
	}
	r.dialWith(t, "/out/lab1/cam?code="+code, nil)

	// One address, many tokens.
	crowd := clientFrom(t, "127.0.0.3")
	for i := 0; i < auth.DefaultMaxCodesPerClient; i++ {
		if st, _ := r.askCode(t, crowd, "/out/lab1/cam", r.mint(t, "lab1/", "read")); st != http.StatusOK {
			t.Fatalf("code %d from one address: %d, want 200", i, st)
		}
	}
	if st, _ := r.askCode(t, crowd, "/out/lab1/cam", other); st != http.StatusTooManyRequests {
		t.Fatalf("a token from an address holding %d codes: %d, want 429", auth.DefaultMaxCodesPerClient, st)
	}

	r.dialWith(t, "/out/lab1/cam?code="+codes[0], nil)
	if st, _ := r.askCode(t, bots[0], "/out/lab1/cam", greedy); st != http.StatusOK {
		t.Fatalf("after spending a code: %d, want 200", st)
	}
}
