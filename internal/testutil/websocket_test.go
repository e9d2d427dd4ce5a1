package testutil

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestHandshake: a server that takes only a bearer token "ok" answers
// Handshake with 101 and a websocket for it, and with its refusal
// otherwise; Dial opens the websocket the test then talks over.
func TestHandshake(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer ok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		if mt, m, err := c.ReadMessage(); err == nil {
			_ = c.WriteMessage(mt, m)
		}
	}))
	t.Cleanup(srv.Close) // last: after the websockets close
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	if c, st := Handshake(t, url, "ok"); c == nil || st != http.StatusSwitchingProtocols {
		t.Fatalf("the right token: %v %d, want a websocket and 101", c, st)
	}
	for _, tok := range []string{"", "bad"} {
		if c, st := Handshake(t, url, tok); c != nil || st != http.StatusUnauthorized {
			t.Fatalf("token %q: %v %d, want nil and 401", tok, c, st)
		}
	}
	c := Dial(t, url, http.Header{"Authorization": {"Bearer ok"}})
	if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "hi" {
		t.Fatalf("echo: %q %v", m, err)
	}
}
