package testrelay

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/vwlab/vw/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dial(t *testing.T, r *Relay) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: r.TLSConfig(), HandshakeTimeout: 5 * time.Second}
	h := http.Header{"Authorization": {"Bearer x"}}
	c, _, err := d.Dial(r.URL(), h)
	if err != nil {
		t.Fatalf("dial %s: %v", r.URL(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Over ws and wss the relay records messages with their type, the
// handshake headers and the close code, and talks back; Stop then drops
// the connection without a close frame.
func TestRelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"ws", false}, {"wss", true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(t, Options{TLS: tc.tls})
			c := dial(t, r)
			want := []Msg{{Data: []byte("hello"), Text: true}, {Data: []byte{0, 1, 0xff}}}
			for _, m := range want {
				typ := websocket.BinaryMessage
				if m.Text {
					typ = websocket.TextMessage
				}
				if err := c.WriteMessage(typ, m.Data); err != nil {
					t.Fatal(err)
				}
			}
			testutil.Eventually(t, 5*time.Second, func() bool { return r.Count() == len(want) }, "relay got %d of %d", r.Count(), len(want))
			for i, m := range r.Msgs() {
				if m.Text != want[i].Text || !bytes.Equal(m.Data, want[i].Data) {
					t.Errorf("message %d = %+v, want %+v", i, m, want[i])
				}
			}
			if h := r.Headers(); len(h) != 1 || h[0].Get("Authorization") != "Bearer x" {
				t.Errorf("headers %v, want one handshake with the token", h)
			}
			if r.Conns() != 1 {
				t.Errorf("Conns = %d, want 1", r.Conns())
			}

			r.Send(Msg{Data: []byte("back"), Text: true})
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if typ, b, err := c.ReadMessage(); err != nil || typ != websocket.TextMessage || string(b) != "back" {
				t.Fatalf("read %d %q %v, want the text message back", typ, b, err)
			}

			// gorilla reports a connection that ended without a close
			// frame as 1006, a code never sent on the wire.
			r.Stop()
			_, _, err := c.ReadMessage()
			if !websocket.IsCloseError(err, websocket.CloseAbnormalClosure) {
				t.Errorf("after Stop: %v, want the connection dropped without a close frame", err)
			}
		})
	}
}

func TestCloseCodeRecorded(t *testing.T) {
	r := New(t, Options{})
	c := dial(t, r)
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye")
	if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return len(r.Closes()) == 1 }, "no close recorded")
	if got := r.Closes()[0]; got != websocket.CloseGoingAway {
		t.Errorf("close code %d, want %d", got, websocket.CloseGoingAway)
	}
}

// A paused or gated relay reads nothing until resumed or opened; a stalled
// one never reads.
func TestHoldingBack(t *testing.T) {
	gate := make(chan struct{})
	for _, tc := range []struct {
		name    string
		opt     Options
		hold    func(*Relay)
		release func(*Relay)
	}{
		{"pause", Options{}, (*Relay).Pause, (*Relay).Resume},
		{"gate", Options{Gate: gate}, func(*Relay) {}, func(*Relay) { close(gate) }},
		{"stall", Options{Stall: true}, func(*Relay) {}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(t, tc.opt)
			c := dial(t, r)
			// One message read first, so that a pause is in force
			// from the next one on.
			if !tc.opt.Stall && tc.opt.Gate == nil {
				if err := c.WriteMessage(websocket.BinaryMessage, []byte("first")); err != nil {
					t.Fatal(err)
				}
				testutil.Eventually(t, 5*time.Second, func() bool { return r.Count() == 1 }, "first message not read")
			}
			before := r.Count()
			tc.hold(r)
			for range 3 {
				if err := c.WriteMessage(websocket.BinaryMessage, []byte("held")); err != nil {
					t.Fatal(err)
				}
			}
			// A paused handler still finishes the read it is in: one
			// message may get through.
			if testutil.WaitFor(100*time.Millisecond, func() bool { return r.Count() > before+1 }) {
				t.Fatalf("relay read %d messages while held back", r.Count()-before)
			}
			if tc.release == nil {
				return
			}
			tc.release(r)
			testutil.Eventually(t, 5*time.Second, func() bool { return r.Count() == before+3 }, "relay got %d of 3 after release", r.Count()-before)
		})
	}
}
