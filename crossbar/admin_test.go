package crossbar

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestLabAdmin: an admin token for lab1/ sees only lab1's topics in
// /stats (JSON and page); a deny of its own closes only the connections
// under lab1/ that it names. Only the relay-wide admin sees and closes
// everything.
func TestLabAdmin(t *testing.T) {
	r := startAuthRelay(t, Config{})
	lab1Admin, root := r.mint(t, "lab1/", "admin"), r.mint(t, "/", "admin")
	lab1Pub, lab2Pub := r.mint(t, "lab1/", "write"), r.mint(t, "lab2/", "write")
	lab1Op, lab2Op := r.mint(t, "lab1/", "read,write"), r.mint(t, "lab2/", "read,write")
	lab1View, lab2View := r.mint(t, "lab1/", "read"), r.mint(t, "lab2/", "read")
	r.dialWith(t, "/in/lab1/cam", bearer(lab1Pub))
	r.dialWith(t, "/in/lab2/cam", bearer(lab2Pub))
	r.dialWith(t, "/bi/lab1/api", bearer(lab1Op))
	r.dialWith(t, "/bi/lab2/api", bearer(lab2Op))
	v1 := r.dialWith(t, "/out/lab1/cam", bearer(lab1View))
	v2 := r.dialWith(t, "/out/lab2/cam", bearer(lab2View))
	r.waitClients(t, "/out/lab1/cam", 1, 1, 0)
	r.waitClients(t, "/out/lab2/cam", 1, 1, 0)
	r.waitClients(t, "/bi/lab1/api", 0, 0, 1)
	r.waitClients(t, "/bi/lab2/api", 0, 0, 1)

	topics := func(tok string) string {
		t.Helper()
		st, body := r.getStats(t, tok, "json")
		var s Stats
		if st != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil {
			t.Fatalf("/stats: %d %s", st, body)
		}
		var names []string
		for _, ts := range s.Topics {
			names = append(names, ts.Name)
		}
		return strings.Join(names, " ")
	}
	if got := topics(lab1Admin); got != "/bi/lab1/api /out/lab1/cam" {
		t.Fatalf("lab1's admin sees %q, want only lab1's topics", got)
	}
	if got := topics(root); got != "/bi/lab1/api /bi/lab2/api /out/lab1/cam /out/lab2/cam" {
		t.Fatalf("the relay-wide admin sees %q, want every topic", got)
	}
	st, page := r.getStats(t, lab1Admin, "html")
	if st != http.StatusOK || !strings.Contains(page, "lab1/cam") || strings.Contains(page, "lab2") || strings.Contains(page, jti(t, lab2View)) {
		t.Fatalf("lab1's admin's stats page (%d) names lab2 or misses lab1:\n%s", st, page)
	}

	// How a deny is scoped is auth's (TestDenyScoped); here, that the
	// relay closes by the entry's path: lab1's admin denying lab2's id
	// alone keeps within lab1/, and lab2's connection stays.
	if st := r.denyBody(t, lab1Admin, fmt.Sprintf(`{"jti":%q}`, jti(t, lab2View))); st != http.StatusOK {
		t.Errorf("lab1's admin denying an id under its own path: %d, want 200", st)
	}
	r.dialWith(t, "/out/lab2/cam", bearer(lab2View))
	send(t, v2, websocket.TextMessage, []byte("still open"))

	if st := r.denyBody(t, lab1Admin, fmt.Sprintf(`{"token":%q}`, lab1View)); st != http.StatusOK {
		t.Fatalf("lab1's admin denying lab1's token: %d, want 200", st)
	}
	wantClosed(t, v1, "token revoked")
	if st := r.denyBody(t, root, fmt.Sprintf(`{"token":%q}`, lab2View)); st != http.StatusOK {
		t.Fatalf("the relay-wide admin denying lab2's token: %d, want 200", st)
	}
	wantClosed(t, v2, "token revoked")
}

// wantClosed reads from c until the relay closes it, failing unless the
// close is 1008 with reason within 5 s.
func wantClosed(t testing.TB, c *websocket.Conn, reason string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || ce.Text != reason {
			t.Fatalf("connection ended with %v, want close 1008 %q", err, reason)
		}
		return
	}
}
