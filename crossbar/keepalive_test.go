package crossbar

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
)

// TestSilentClientDropped checks the README's promise that a websocket
// client that stops answering pings is dropped after two ping intervals,
// whatever its role, while a client connected at the same moment that
// answers them stays.
func TestSilentClientDropped(t *testing.T) {
	// Long enough that a client answering from a busy machine keeps up;
	// short enough for a test.
	const interval = time.Second
	for _, tc := range []struct{ role, path, topic string }{
		{"viewer", "/out/cam", "/out/cam"},
		{"publisher", "/in/cam", "/out/cam"},
		{"peer", "/bi/lab1/api", "/bi/lab1/api"},
	} {
		t.Run(tc.role, func(t *testing.T) {
			t.Parallel()
			r := startRelay(t, Config{PingInterval: interval})
			silent := r.dial(t, tc.path)
			answering := r.dial(t, tc.path)
			// gorilla answers pings inside a read; the silent one reads
			// (so that it sees its connection end) but never answers.
			silent.SetPingHandler(func(string) error { return nil })
			silentEnded, answeringEnded := readUntilEnd(silent), readUntilEnd(answering)
			start := time.Now()

			select {
			case err := <-silentEnded:
				t.Logf("the silent %s was dropped after %v: %v", tc.role, time.Since(start).Round(time.Millisecond), err)
			case err := <-answeringEnded:
				t.Fatalf("the %s answering pings was dropped: %v", tc.role, err)
			case <-time.After(20 * interval):
				t.Fatalf("a %s that answers no ping is still connected after %v (ping interval %v)", tc.role, 20*interval, interval)
			}
			// The relay forgets it; the answering one is still there, two
			// intervals and more after it connected.
			testutil.Eventually(t, 5*time.Second, func() bool { return len(r.topic(tc.topic).Clients) == 1 },
				"the relay still lists %d clients on %s", len(r.topic(tc.topic).Clients), tc.topic)
			select {
			case err := <-answeringEnded:
				t.Fatalf("the %s answering pings was dropped: %v", tc.role, err)
			default:
			}
			_ = answering.Close()
			<-answeringEnded
		})
	}
}

// readUntilEnd reads c until its connection ends, and then says why.
func readUntilEnd(c *websocket.Conn) <-chan error {
	ended := make(chan error, 1)
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				ended <- err
				return
			}
		}
	}()
	return ended
}
