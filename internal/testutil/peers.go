package testutil

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// HearEachOther checks N:N delivery on a bidirectional route: every peer
// sends one text message (its letter: A, B, ...), and each must hear every
// other peer's once, each within wait, and then nothing more for 300 ms
// (no echo of its own, no duplicate).
func HearEachOther(t testing.TB, peers []*websocket.Conn, wait time.Duration) {
	t.Helper()
	for i, p := range peers {
		if err := p.WriteMessage(websocket.TextMessage, []byte{'A' + byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range peers {
		got := map[byte]int{}
		for range len(peers) - 1 {
			_ = p.SetReadDeadline(time.Now().Add(wait))
			mt, m, err := p.ReadMessage()
			if err != nil || mt != websocket.TextMessage || len(m) == 0 {
				t.Fatalf("peer %d: %v (message type %d, %q) after %v", i, err, mt, m, got)
			}
			got[m[0]]++
		}
		for j := range peers {
			want := 1
			if j == i {
				want = 0
			}
			if n := got['A'+byte(j)]; n != want {
				t.Errorf("peer %d heard peer %d %d times, want %d", i, j, n, want)
			}
		}
		_ = p.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, m, err := p.ReadMessage(); err == nil {
			t.Errorf("peer %d heard more: %q (an echo or a duplicate)", i, m)
		}
	}
}
