package reconws

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/vwlab/vw/internal/testrelay"
	"github.com/vwlab/vw/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait5 = 5 * time.Second

// start starts a client and stops it (and waits) when the test ends.
func start(t *testing.T, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Start(ctx, cfg, testutil.Log(t))
	if err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-c.Done()
	})
	return c
}

func waitReady(t *testing.T, c *Client) {
	t.Helper()
	select {
	case <-c.Ready():
	case <-time.After(5 * time.Second):
		t.Fatalf("client never connected to %s: %+v", c.URL(), c.Stats())
	}
}

func waitDone(t *testing.T, c *Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("client did not stop")
	}
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Every frame length encoding (7-bit, 16-bit, 64-bit) and both message types
// arrive intact at a real gorilla server, which rejects unmasked or
// malformed client frames.
func TestFramesArriveIntact(t *testing.T) {
	r := testrelay.New(t, testrelay.Options{})
	before := time.Now()
	c := start(t, Config{URL: r.URL(), Queue: 64})
	waitReady(t, c)
	if lc := c.Stats().LastConnect; lc.Before(before) || lc.After(time.Now()) {
		t.Errorf("LastConnect %v, want between the start %v and now", lc, before)
	}
	var want []Message
	var size uint64
	for _, n := range []int{0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 200_001} {
		for _, text := range []bool{false, true} {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte('a' + (i*7+n)%26)
			}
			want = append(want, Message{Data: data, Text: text})
			size += uint64(n)
		}
	}
	for i, m := range want {
		if !c.Send(m.Data, m.Text) {
			t.Fatalf("Send #%d refused", i)
		}
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return r.Count() >= len(want) },
		"relay got %d of %d messages", r.Count(), len(want))
	got := r.Msgs()
	if len(got) != len(want) {
		t.Fatalf("relay got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Text != want[i].Text || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Errorf("message %d: got text=%v len=%d, want text=%v len=%d",
				i, got[i].Text, len(got[i].Data), want[i].Text, len(want[i].Data))
		}
	}
	if s := c.Stats(); s.Sent != uint64(len(want)) || s.Dropped != 0 || s.SentBytes != size {
		t.Errorf("stats %+v, want Sent=%d Dropped=0 SentBytes=%d", s, len(want), size)
	}
}

func TestTokenHeader(t *testing.T) {
	for _, tc := range []struct {
		name, token, want string
	}{
		{"with token", "s3cr3t.jwt", "Bearer s3cr3t.jwt"},
		{"without", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testrelay.New(t, testrelay.Options{})
			c := start(t, Config{URL: r.URL(), Token: tc.token})
			waitReady(t, c)
			h := r.Headers()
			if len(h) != 1 {
				t.Fatalf("relay saw %d handshakes, want 1", len(h))
			}
			if got := h[0].Get("Authorization"); got != tc.want {
				t.Errorf("Authorization = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMessagesFromPeer(t *testing.T) {
	var mu sync.Mutex
	var got []Message
	r := testrelay.New(t, testrelay.Options{})
	c := start(t, Config{URL: r.URL(), OnMessage: func(m Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}})
	waitReady(t, c)
	testutil.Eventually(t, 5*time.Second, func() bool { return r.Conns() == 1 }, "relay has no connection")
	want := []Message{{Data: []byte(`{"verb":"healthcheck"}`), Text: true}, {Data: []byte{0, 1, 2, 0xff}}}
	for _, m := range want {
		r.Send(testrelay.Msg(m))
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(want)
	}, "client did not get all %d messages", len(want))
	mu.Lock()
	defer mu.Unlock()
	for i := range want {
		if got[i].Text != want[i].Text || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Errorf("message %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestSendRefusedWhileDown(t *testing.T) {
	c := start(t, Config{URL: "ws://" + closedAddr(t) + "/in/x", BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	testutil.Eventually(t, 5*time.Second, func() bool { return c.Stats().Failures >= 2 }, "no failed dials")
	if c.Connected() {
		t.Fatal("Connected() with nothing listening")
	}
	if c.Send([]byte("x"), false) {
		t.Fatal("Send accepted a message while not connected")
	}
	if d := c.Stats().Dropped; d != 1 {
		t.Errorf("Dropped = %d, want 1", d)
	}
}

// Close writes everything still queued before the close frame, and the peer
// sees a normal closure; cancelling the context sends "going away".
func TestStopSendsCloseFrame(t *testing.T) {
	for _, tc := range []struct {
		name     string
		graceful bool
		code     int
	}{
		{"Close flushes", true, websocket.CloseNormalClosure},
		{"context", false, websocket.CloseGoingAway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The relay reads nothing until the gate opens, so the
			// client's writes back up into its queue.
			gate := make(chan struct{})
			r := testrelay.New(t, testrelay.Options{Gate: gate})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, err := Start(ctx, Config{URL: r.URL(), Queue: 4}, testutil.Log(t))
			if err != nil {
				t.Fatal(err)
			}
			waitReady(t, c)
			n := 0
			if tc.graceful {
				msg := make([]byte, 1<<20)
				// The queue is full only once the write loop is stuck
				// in a write: the socket buffers are full too.
				for c.Send(msg, false) {
					n++
				}
				c.Close()
			} else {
				cancel()
			}
			close(gate)
			waitDone(t, c)
			testutil.Eventually(t, 5*time.Second, func() bool { return len(r.Closes()) == 1 },
				"relay saw close codes %v", r.Closes())
			if got := r.Closes()[0]; got != tc.code {
				t.Errorf("close code %d, want %d", got, tc.code)
			}
			if r.Count() != n {
				t.Errorf("relay got %d messages before the close frame, want %d", r.Count(), n)
			}
			if c.Send([]byte("late"), false) {
				t.Error("Send accepted after stop")
			}
		})
	}
}

// A peer that stops answering pings is noticed within the pong deadline and
// the client redials.
func TestDeadPeerNoticed(t *testing.T) {
	r := testrelay.New(t, testrelay.Options{Stall: true})
	c := start(t, Config{URL: r.URL(), PingInterval: 20 * time.Millisecond, PongWait: 60 * time.Millisecond, BackoffMin: time.Millisecond})
	waitReady(t, c)
	testutil.Eventually(t, 5*time.Second, func() bool { return c.Stats().Connects >= 2 },
		"client never gave up on a silent peer: %+v", c.Stats())
}

func TestBackoff(t *testing.T) {
	lo, hi := DefaultBackoffMin, DefaultBackoffMax
	if lo > 250*time.Millisecond || hi > 10*time.Second {
		t.Fatalf("defaults %v..%v outside the contract (first ≤ 250ms, cap ≤ 10s)", lo, hi)
	}
	for _, tc := range []struct {
		attempt int
		step    time.Duration
	}{
		{0, 250 * time.Millisecond},
		{1, 500 * time.Millisecond},
		{2, time.Second},
		{3, 2 * time.Second},
		{5, 8 * time.Second},
		{6, 10 * time.Second},
		{60, 10 * time.Second},
	} {
		if got := Step(lo, hi, tc.attempt); got != tc.step {
			t.Errorf("Step(%d) = %v, want %v", tc.attempt, got, tc.step)
		}
		seen := map[time.Duration]bool{}
		for range 200 {
			d := Backoff(lo, hi, tc.attempt)
			if d < tc.step/2 || d > tc.step {
				t.Fatalf("Backoff(%d) = %v, outside [%v, %v]", tc.attempt, d, tc.step/2, tc.step)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Backoff(%d) has no jitter: %d distinct values in 200", tc.attempt, len(seen))
		}
	}
}

// A relay that refuses the handshake is reported with its status and
// reason, at warning level, once.
func TestHandshakeRefusedIsLogged(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "token expired", http.StatusUnauthorized)
	}))
	defer srv.Close()
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Start(ctx, Config{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond}, logrus.NewEntry(log))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return c.Stats().Failures >= 3 }, "no failed dials")
	cancel()
	waitDone(t, c)
	var warns []string
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.WarnLevel {
			warns = append(warns, fmt.Sprint(e.Data["err"]))
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "401") || !strings.Contains(warns[0], "token expired") {
		t.Errorf("warnings %q, want one naming 401 and the reason", warns)
	}
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"", "http://h/x", "wss://", "ws:///path", "relay:8080/in/x", "ws://[::1/x", "/in/x"} {
		if _, err := Start(context.Background(), Config{URL: u}, testutil.Log(t)); err == nil {
			t.Errorf("Start(%q) accepted", u)
		}
	}
}

// TestConfig: zero takes the default (PongWait follows PingInterval); a
// negative setting is refused by name.
func TestConfig(t *testing.T) {
	c, err := Config{PingInterval: time.Second}.withDefaults()
	if err != nil || c.PongWait != 1500*time.Millisecond || c.Queue != DefaultQueue {
		t.Fatalf("withDefaults: %+v, %v", c, err)
	}
	_, err = Start(context.Background(), Config{URL: "ws://127.0.0.1:1/x", WriteWait: -time.Second}, testutil.Log(t))
	if err == nil || !strings.Contains(err.Error(), "WriteWait is -1s") {
		t.Fatalf("negative WriteWait: %v", err)
	}
}

// A peer that stopped reading cannot hold Close up for longer than
// CloseTimeout, even with a write stuck on full socket buffers.
func TestCloseBoundedWithStuckPeer(t *testing.T) {
	r := testrelay.New(t, testrelay.Options{Stall: true})
	c := start(t, Config{URL: r.URL(), CloseTimeout: 50 * time.Millisecond, WriteWait: time.Minute})
	waitReady(t, c)
	// Far more than loopback socket buffers hold: the write loop is stuck
	// in this write once it has taken the message off the queue.
	if !c.Send(make([]byte, 8<<20), false) {
		t.Fatal("Send refused")
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return len(c.send) == 0 }, "write loop never took the message")
	c.Close()
	waitDone(t, c) // fails after 5s; WriteWait alone would take a minute
}
