package testutil

import (
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

// Dial opens a websocket to url with the headers h (nil for none), closed
// when the test ends; the test fails if the handshake does.
func Dial(t testing.TB, url string, h http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Handshake tries a websocket handshake at url, with token as a bearer
// token if it is set, and returns the HTTP status: 101 with the websocket
// (closed when the test ends), or a refusal's status and nil. The test
// fails if there is no answer at all.
func Handshake(t testing.TB, url, token string) (*websocket.Conn, int) {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err == nil {
		t.Cleanup(func() { c.Close() })
		return c, http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	resp.Body.Close()
	return nil, resp.StatusCode
}
