package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/internal/testutil"
)

// wsMsg is one message a test client received.
type wsMsg struct {
	typ  int
	data []byte
	at   time.Time
}

// wsClient is a websocket client whose reads run in their own goroutine, so
// a test can wait with a deadline without breaking the connection (gorilla
// connections are unusable after a read timeout).
type wsClient struct {
	c    *websocket.Conn
	msgs chan wsMsg
	done chan struct{}
	err  error // why reading stopped; valid after done is closed
}

func dialWS(t testing.TB, url string, h http.Header) *wsClient {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	w := &wsClient{c: c, msgs: make(chan wsMsg, 4096), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			typ, b, err := c.ReadMessage()
			if err != nil {
				w.err = err
				return
			}
			select {
			case w.msgs <- wsMsg{typ, b, time.Now()}:
			default: // a test that stops reading loses messages, never blocks
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-w.done
	})
	return w
}

func (w *wsClient) send(t testing.TB, text string) {
	t.Helper()
	if err := w.c.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		t.Fatal(err)
	}
}

// next returns the next message, failing the test after timeout.
func (w *wsClient) next(t testing.TB, timeout time.Duration) wsMsg {
	t.Helper()
	select {
	case m := <-w.msgs:
		return m
	case <-w.done:
		t.Fatalf("connection ended: %v", w.err)
	case <-time.After(timeout):
		t.Fatalf("no message within %v", timeout)
	}
	return wsMsg{}
}

// relayStats reads the relay's /stats as JSON.
func relayStats(t testing.TB, relay *proc) crossbar.Stats {
	t.Helper()
	var st crossbar.Stats
	r := testutil.Do(t, testutil.Req{URL: relay.baseURL + "/stats?format=json", Token: relay.statsToken, Client: relay.client})
	status, body := r.Status, r.Body
	if status != 200 {
		t.Fatalf("/stats: %d %s", status, body)
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/stats: %v", err)
	}
	return st
}

// topicStats returns the relay's stats of one topic (named without a
// leading slash), and whether it exists.
func topicStats(t testing.TB, relay *proc, name string) (crossbar.TopicReport, bool) {
	for _, ts := range relayStats(t, relay).Topics {
		if strings.Trim(ts.Name, "/") == name {
			return ts, true
		}
	}
	return crossbar.TopicReport{}, false
}

// waitPeers waits until a bidirectional route of the relay has n peers: a
// peer counts once it receives, and a message sent before then would
// rightly miss it.
func waitPeers(t testing.TB, relay *proc, route string, n int) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() bool {
		ts, _ := topicStats(t, relay, route)
		return ts.Peers >= n
	}, "route %s never had %d receiving peers: %+v", route, n, relayStats(t, relay))
}
