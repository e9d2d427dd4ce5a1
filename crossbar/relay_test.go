package crossbar

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
)

const (
	bin  = websocket.BinaryMessage
	text = websocket.TextMessage
)

// TestRelaySemantics runs scripts of sends over real websockets and checks
// who receives what, in order, with its type kept. After each send the test
// waits until the relay has taken the message in (so a message that goes
// nowhere is known to have gone nowhere), then reads it from every client
// that must get it; a client that got something it should not have would
// read the wrong message at its next expected one. It is long because it
// is one table of scripts.
func TestRelaySemantics(t *testing.T) {
	for _, tc := range []struct {
		name  string
		paths []string
		steps []scriptStep
	}{
		{
			name:  "in to out is one way",
			paths: []string{"/in/cam", "/out/cam", "/out/cam"},
			steps: []scriptStep{
				{0, bin, "ts 1", []int{1, 2}},
				{1, text, "a viewer talks", nil},
				{2, bin, "a viewer sends binary", nil},
				{0, text, "text stays text", []int{1, 2}},
				{0, bin, "binary stays binary", []int{1, 2}},
			},
		},
		{
			name:  "publishers do not hear each other",
			paths: []string{"/in/cam", "/in/cam", "/out/cam"},
			steps: []scriptStep{
				{0, bin, "from 0", []int{2}},
				{1, bin, "from 1", []int{2}},
				{0, text, "again from 0", []int{2}},
			},
		},
		{
			name:  "streams are separate",
			paths: []string{"/in/a", "/out/a", "/in/b", "/out/b", "/out/a/b"},
			steps: []scriptStep{
				{0, bin, "to a", []int{1}},
				{2, bin, "to b", []int{3}},
				{0, text, "to a again", []int{1}},
			},
		},
		{
			name:  "bidirectional is N to N without echo",
			paths: []string{"/bi/lab1/api", "/bi/lab1/api", "/bi/lab1/api"},
			steps: []scriptStep{
				{0, text, `{"verb":"healthcheck"}`, []int{1, 2}},
				{1, text, `{"healthcheck":"ok"}`, []int{0, 2}},
				{2, bin, "binary", []int{0, 1}},
				{0, bin, "last", []int{1, 2}},
			},
		},
		{
			name:  "any other path is bidirectional",
			paths: []string{"/lab1", "/lab1", "/lab2"},
			steps: []scriptStep{
				{0, text, "hi", []int{1}},
				{1, text, "hi back", []int{0}},
				{2, text, "alone", nil},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { runScript(t, tc.paths, tc.steps) })
	}
}

// scriptStep is one send of a TestRelaySemantics script.
type scriptStep struct {
	from int
	mt   int
	data string
	to   []int // clients that must receive it
}

// runScript connects a client to each of paths, runs steps, and checks
// that no publisher was ever queued a message.
func runScript(t *testing.T, paths []string, steps []scriptStep) {
	r := startRelay(t, Config{})
	conns := make([]*websocket.Conn, len(paths))
	for i, p := range paths {
		conns[i] = r.dial(t, p)
	}
	waitRegistered(t, r, paths)
	for i, st := range steps {
		sender := conns[st.from]
		before := r.taken(t, sender)
		send(t, sender, st.mt, []byte(st.data))
		testutil.Eventually(t, 5*time.Second, func() bool { return r.taken(t, sender) == before+1 },
			"step %d: the relay did not take in %q", i, st.data)
		for _, to := range st.to {
			mt, b := read(t, conns[to])
			if mt != st.mt || string(b) != st.data {
				t.Fatalf("step %d: client %d (%s) got type %d %q, want type %d %q",
					i, to, paths[to], mt, b, st.mt, st.data)
			}
		}
	}
	// A publisher has no queue: nothing was ever written to one.
	for i, p := range paths {
		if strings.HasPrefix(p, "/in/") {
			if cs := r.clientOf(t, conns[i]); cs.MsgsOut != 0 {
				t.Errorf("publisher %d got %d messages, want none", i, cs.MsgsOut)
			}
		}
	}
}

// waitRegistered waits until the client of every path is registered: a
// message sent earlier would rightly miss a viewer not yet subscribed.
func waitRegistered(t *testing.T, r *relay, paths []string) {
	want := map[string][3]int{}
	for _, p := range paths {
		// The contract: /in/{x} publishes to /out/{x}, /out/{x}
		// watches it, any other path is bidirectional.
		topic, role := p, 2
		if x, ok := strings.CutPrefix(p, "/in/"); ok {
			topic, role = "/out/"+x, 0
		} else if strings.HasPrefix(p, "/out/") {
			role = 1
		}
		n := want[topic]
		n[role]++
		want[topic] = n
	}
	for topic, n := range want {
		r.waitClients(t, topic, n[0], n[1], n[2])
	}
}

// clientOf finds the relay's stats of a client connection.
func (r *relay) clientOf(t testing.TB, c *websocket.Conn) ClientStats {
	t.Helper()
	for _, ts := range r.Stats().Topics {
		for _, cs := range ts.Clients {
			if cs.Remote == c.LocalAddr().String() {
				return cs
			}
		}
	}
	t.Fatalf("no client %s in the stats", c.LocalAddr())
	return ClientStats{}
}

// taken counts the messages the relay has read from a client: published, or
// dropped for a viewer.
func (r *relay) taken(t testing.TB, c *websocket.Conn) uint64 {
	cs := r.clientOf(t, c)
	return cs.MsgsIn + cs.Ignored
}

func TestSubprotocols(t *testing.T) {
	r := startRelay(t, Config{})
	pub := r.dial(t, "/in/s")
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{nil, ""},
		{[]string{"null"}, "null"},
		{[]string{"binary", "null"}, "null"},
		{[]string{"binary"}, ""},
	} {
		t.Run(fmt.Sprint(tc.offer), func(t *testing.T) {
			c := r.dial(t, "/out/s", tc.offer...)
			if got := c.Subprotocol(); got != tc.want {
				t.Fatalf("offered %q: the relay chose %q, want %q", tc.offer, got, tc.want)
			}
			// And it plays: the viewer gets the stream.
			r.waitClients(t, "/out/s", 1, 1, 0)
			send(t, pub, bin, []byte("ts"))
			if _, b := read(t, c); string(b) != "ts" {
				t.Fatalf("got %q, want %q", b, "ts")
			}
			_ = c.Close()
			r.waitClients(t, "/out/s", 1, 0, 0)
		})
	}
}

// TestSlowViewers stalls one viewer (never read)
// next to a healthy one, and checks that the healthy one gets every message
// in order while the stalled one is dropped, counted, and its connection
// closed: by a full queue (with a close reason, for a viewer that reads
// again in time) or by a passed write deadline.
func TestSlowViewers(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cfg          Config
		dial         func(network, addr string) (net.Conn, error)
		resume       bool // start reading once the drop is counted
		wantCloseMsg string
		reason       string // in /stats
	}{
		{"full queue", Config{Queue: 8, WriteTimeout: 20 * time.Second}, nil, true, "too slow: fell 8 messages behind", "queue_full"},
		{"backlog bytes", Config{Queue: 100000, QueueBytes: 1 << 20, WriteTimeout: 20 * time.Second}, smallReceiveBuffer, true, "MiB behind", "backlog_bytes"},
		// Long enough that the healthy viewer, reading all along, never
		// misses it on a busy machine.
		{"write deadline", Config{Queue: 100000, QueueBytes: 1 << 40, WriteTimeout: 2 * time.Second}, tinyReceiveBuffer, false, "", "write_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRelay(t, tc.cfg)
			pub := r.dial(t, "/in/s")
			healthy := r.dial(t, "/out/s")
			stalled := r.dialVia(t, "/out/s", tc.dial)
			r.waitClients(t, "/out/s", 1, 2, 0)

			publishPaced(t, pub, healthy)
			testutil.Eventually(t, 10*time.Second, func() bool { return r.topic("/out/s").DroppedViewers == 1 },
				"the stalled viewer was not counted as dropped: %+v", r.topic("/out/s"))
			if tc.resume {
				readToClose(t, stalled, tc.wantCloseMsg)
			}
			r.waitClients(t, "/out/s", 1, 1, 0)
			// The healthy viewer still gets new messages.
			send(t, pub, text, []byte("after"))
			if mt, b := read(t, healthy); mt != text || string(b) != "after" {
				t.Fatalf("after the drop the healthy viewer got %d %q", mt, b)
			}
			var st Stats
			getJSON(t, r.http.URL+"/stats?format=json", "", &st)
			if len(st.Topics) != 1 || st.Topics[0].DroppedViewers != 1 || st.Topics[0].Viewers != 1 {
				t.Fatalf("/stats: %+v, want /out/s with 1 viewer and 1 dropped", st.Topics)
			}
			if d := st.Topics[0].Drops; len(d) != 1 || d[tc.reason] != 1 {
				t.Fatalf("/stats: drops %v, want one for %s", d, tc.reason)
			}
		})
	}
}

// slowN messages of slowSize bytes make 12.8 MB: more than the socket
// buffers hold.
const slowN, slowSize = 200, 64 << 10

// publishPaced sends slowN numbered messages on pub and checks that the
// healthy viewer reads every one, in order. The publisher keeps within a
// few messages of the healthy viewer, as a real stream's rate would, so
// that only a stalled viewer falls a queue behind.
func publishPaced(t *testing.T, pub, healthy *websocket.Conn) {
	got := make(chan error, 1)
	progress := make(chan int, slowN)
	go func() { got <- readNumbered(healthy, progress) }()
	msg := make([]byte, slowSize)
	received := 0
	for i := range slowN {
		for received < i-4 {
			select {
			case received = <-progress:
			case err := <-got:
				t.Fatalf("the healthy viewer: %v", err)
			}
		}
		msg[0], msg[1] = byte(i), byte(i>>8)
		send(t, pub, bin, msg)
	}
	if err := <-got; err != nil {
		t.Fatalf("the healthy viewer: %v", err)
	}
}

// readNumbered reads publishPaced's messages from c, telling progress the
// number of each but the first before reading it.
func readNumbered(c *websocket.Conn, progress chan<- int) error {
	for i := range slowN {
		if i > 0 {
			progress <- i
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := c.ReadMessage()
		if err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		if len(b) != slowSize || int(b[0])|int(b[1])<<8 != i {
			return fmt.Errorf("message %d: got %d bytes numbered %d", i, len(b), int(b[0])|int(b[1])<<8)
		}
	}
	return nil
}

// readToClose: reading again, a dropped viewer drains what was sent before
// the drop and then learns why it was dropped, in a policy-violation close
// whose text holds want.
func readToClose(t *testing.T, c *websocket.Conn, want string) {
	var ce *websocket.CloseError
	var err error
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err = c.ReadMessage(); err != nil {
			break
		}
	}
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation || !strings.Contains(ce.Text, want) {
		t.Fatalf("the dropped viewer read %v, want a close frame %d %q", err, websocket.ClosePolicyViolation, want)
	}
}

// dialVia opens a websocket to path through netDial (a small receive
// buffer), closed when the test ends.
func (r *relay) dialVia(t testing.TB, path string, netDial func(network, addr string) (net.Conn, error)) *websocket.Conn {
	t.Helper()
	c, err := r.dialErr(path, netDial)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// tinyReceiveBuffer dials with a small socket receive buffer, so that a
// client that stops reading stalls the relay's writes quickly. (Smaller than
// a loopback segment, it also makes reading again very slow.)
func tinyReceiveBuffer(network, addr string) (net.Conn, error) {
	return dialReceiveBuffer(network, addr, 4096)
}

// smallReceiveBuffer dials with a receive buffer that holds a few loopback
// segments: the relay's writes stall soon, and reading again is fast.
func smallReceiveBuffer(network, addr string) (net.Conn, error) {
	return dialReceiveBuffer(network, addr, 128<<10)
}

func dialReceiveBuffer(network, addr string, size int) (net.Conn, error) {
	c, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(size)
	}
	return c, nil
}

func TestLimits(t *testing.T) {
	r := startRelay(t, Config{MaxViewers: 2, MaxConnsPerAddr: 5, MaxMessage: 1000})
	for _, tc := range []struct {
		name   string
		path   string
		before int // connections to open first on the same path
		status int
	}{
		{"unclean path", "/out/a/../b", 0, http.StatusBadRequest},
		{"double slash", "/out//b", 0, http.StatusBadRequest},
		{"viewers per topic", "/out/full", 2, http.StatusServiceUnavailable},
		{"peers count as viewers", "/bi/full", 2, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var open []*websocket.Conn
			for range tc.before {
				open = append(open, r.dial(t, tc.path))
			}
			_, err := r.dialErr(tc.path, nil)
			if !errors.Is(err, websocket.ErrBadHandshake) {
				t.Fatalf("dial %s: %v, want a refused handshake", tc.path, err)
			}
			resp := r.handshake(t, tc.path)
			var body map[string]string
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if err := jsonBody(resp, &body); err != nil || body["error"] == "" {
				t.Fatalf("body: %v %v, want {\"error\":...}", body, err)
			}
			for _, c := range open {
				_ = c.Close()
			}
			r.waitGone(t, tc.path)
		})
	}
	t.Run("connections per address", func(t *testing.T) {
		for range 5 {
			r.dial(t, "/in/x")
		}
		resp := r.handshake(t, "/out/x")
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 429", resp.StatusCode)
		}
	})
}

func TestMessageTooBig(t *testing.T) {
	r := startRelay(t, Config{MaxMessage: 1000})
	pub := r.dial(t, "/in/big")
	send(t, pub, bin, make([]byte, 1001))
	_ = pub.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := pub.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("after an oversized message the publisher read %v, want close %d", err, websocket.CloseMessageTooBig)
	}
}

func TestCloseSendsGoingAway(t *testing.T) {
	r := startRelay(t, Config{})
	conns := []*websocket.Conn{r.dial(t, "/in/a"), r.dial(t, "/out/a"), r.dial(t, "/bi/c")}
	r.waitClients(t, "/out/a", 1, 1, 0)
	r.waitClients(t, "/bi/c", 0, 0, 1)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		r.Close() // returns once every client has answered the close frame
	}()
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("client %d read %v, want close 1001", i, err)
		}
	}
	<-closed
	if _, err := r.dialErr("/out/a", nil); !errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("dial after Close: %v, want refused", err)
	}
}

func TestPingPong(t *testing.T) {
	// Two intervals must hold a client's answer on a busy machine.
	r := startRelay(t, Config{PingInterval: 500 * time.Millisecond})
	c := r.dial(t, "/out/p")
	pings := make(chan struct{}, 100)
	c.SetPingHandler(func(data string) error {
		pings <- struct{}{}
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	pongs := make(chan string, 1)
	c.SetPongHandler(func(data string) error {
		pongs <- data
		return nil
	})
	if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Control frames are handled inside ReadMessage; nothing else arrives.
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage()
		done <- err
	}()
	select {
	case p := <-pongs:
		if p != "are you there" {
			t.Fatalf("pong %q", p)
		}
	case err := <-done:
		t.Fatalf("read ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no pong within 5 s")
	}
	for range 3 { // answering pings keeps the viewer connected past 2 intervals
		select {
		case <-pings:
		case err := <-done:
			t.Fatalf("read ended: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("the relay sent no ping within 5 s")
		}
	}
	if n := r.topic("/out/p").Viewers; n != 1 {
		t.Fatalf("%d viewers, want 1 still connected", n)
	}
	_ = c.Close()
	<-done
}

func TestStatsFormats(t *testing.T) {
	r := startRelay(t, Config{})
	pub := r.dial(t, "/in/cam")
	v := r.dial(t, "/out/cam")
	r.waitClients(t, "/out/cam", 1, 1, 0)
	send(t, pub, bin, bytes.Repeat([]byte{1}, 1000))
	read(t, v)
	// Counted once handed over, which can be a moment after v read it.
	testutil.Eventually(t, 5*time.Second, func() bool {
		ts := r.topic("/out/cam")
		return ts.MsgsOut == 1 && slices.ContainsFunc(ts.Clients, func(c ClientStats) bool { return c.Role == Viewer && c.MsgsOut == 1 })
	}, "the relay to count the message")
	for _, tc := range []struct {
		name, query, accept, wantType string
		status                        int
	}{
		{"curl", "", "*/*", "application/json", 200},
		{"no accept", "", "", "application/json", 200},
		{"browser", "", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html", 200},
		{"json preferred", "", "application/json, text/html;q=0.5", "application/json", 200},
		{"explicit json", "?format=json", "text/html", "application/json", 200},
		{"explicit html", "?format=html", "", "text/html", 200},
		{"bad format", "?format=xml", "", "application/json", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := getJSON(t, r.http.URL+"/stats"+tc.query, tc.accept, nil)
			if resp.Status != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.wantType) {
				t.Fatalf("%d %s, want %d %s", resp.Status, resp.Header.Get("Content-Type"), tc.status, tc.wantType)
			}
		})
	}
	var st Stats
	getJSON(t, r.http.URL+"/stats", "", &st)
	if len(st.Topics) != 1 {
		t.Fatalf("topics %+v, want one", st.Topics)
	}
	ts := st.Topics[0]
	if ts.Name != "/out/cam" || ts.Publishers != 1 || ts.Viewers != 1 || ts.MsgsIn != 1 || ts.BytesIn != 1000 ||
		ts.MsgsOut != 1 || ts.BytesOut != 1000 || len(ts.Clients) != 2 || ts.Since.IsZero() {
		t.Fatalf("stats %+v", ts)
	}
	if c := ts.Clients[1]; c.Role != Viewer || c.MsgsOut != 1 || c.BytesOut != 1000 || c.Remote != v.LocalAddr().String() {
		t.Fatalf("viewer stats %+v", c)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		send(t, pub, bin, bytes.Repeat([]byte{1}, 1000))
		read(t, v)
		return r.topic("/out/cam").RateIn > 0
	}, "the rate stays 0 while data flows")

	body := getBody(t, r.http.URL+"/stats?format=html")
	for _, want := range []string{"/out/cam", "publisher", "viewer"} {
		if !strings.Contains(body, want) {
			t.Errorf("the stats page lacks %q", want)
		}
	}
}

func TestPages(t *testing.T) {
	r := startRelay(t, Config{Title: "test relay"})
	pub := r.dial(t, "/in/lab1/cam")
	r.waitClients(t, "/out/lab1/cam", 1, 0, 0)
	r.dial(t, "/in/other") // a second live stream
	r.dial(t, "/out/idle") // a viewer waiting: not live
	r.waitClients(t, "/out/other", 1, 0, 0)
	r.waitClients(t, "/out/idle", 0, 1, 0)
	_ = pub

	index := getBody(t, r.http.URL+"/")
	for _, want := range []string{`href="/play/lab1/cam"`, `href="/play/other"`, "test relay"} {
		if !strings.Contains(index, want) {
			t.Errorf("the index lacks %s:\n%s", want, index)
		}
	}
	if strings.Contains(index, "/play/idle") {
		t.Errorf("the index lists a stream with no publisher")
	}
	play := getBody(t, r.http.URL+"/play/lab1/cam")
	if !strings.Contains(play, `"wsPath":"/out/lab1/cam"`) {
		t.Errorf("the player page does not play /out/lab1/cam:\n%s", play)
	}
	for _, p := range []string{"/nothing", "/play/"} {
		if resp := testutil.Do(t, testutil.Req{URL: r.http.URL + p}); resp.Status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.Status)
		}
	}
}

func TestCloseClients(t *testing.T) {
	r := startRelay(t, Config{})
	pub := r.dial(t, "/in/lab1/cam")
	v1, v2 := r.dial(t, "/out/lab1/cam"), r.dial(t, "/out/lab1/cam")
	other := r.dial(t, "/out/lab2/cam")
	r.waitClients(t, "/out/lab1/cam", 1, 2, 0)
	r.waitClients(t, "/out/lab2/cam", 0, 1, 0)
	target := r.clientOf(t, v1).ID
	n := r.CloseClients(func(c ClientStats) bool { return c.ID == target }, 4001, "token revoked")
	if n != 1 {
		t.Fatalf("CloseClients picked %d clients, want 1", n)
	}
	_ = v1.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := v1.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "token revoked" {
		t.Fatalf("the picked client read %v, want close 4001 \"token revoked\"", err)
	}
	r.waitClients(t, "/out/lab1/cam", 1, 1, 0)
	if d := r.topic("/out/lab1/cam").Drops; len(d) != 1 || d["admin"] != 1 {
		t.Fatalf("/stats: drops %v, want one by admin", d)
	}
	if _, page := r.getStats(t, "", "html"); !strings.Contains(page, "Closed by the relay: admin 1") {
		t.Fatalf("the stats page does not show the drop:\n%s", page)
	}
	// The others carry on.
	send(t, pub, bin, []byte("still here"))
	if _, b := read(t, v2); string(b) != "still here" {
		t.Fatalf("the other viewer got %q", b)
	}
	if n := r.CloseClients(func(c ClientStats) bool { return strings.HasPrefix(c.Topic, "/out/lab2/") }, 4001, "bye"); n != 1 {
		t.Fatalf("closing lab2 picked %d clients, want 1", n)
	}
	_ = other.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := other.ReadMessage(); !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("the lab2 viewer read %v, want close 4001", err)
	}
}

// TestOverTLS runs a stream over wss, where the relay cannot writev and
// gathers each batch into one write instead.
func TestOverTLS(t *testing.T) {
	s := newServer(t, Config{}, testutil.Log(t))
	hs := httptest.NewTLSServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	d := websocket.Dialer{TLSClientConfig: hs.Client().Transport.(*http.Transport).TLSClientConfig, HandshakeTimeout: 5 * time.Second}
	url := "wss" + strings.TrimPrefix(hs.URL, "https")
	pub, _, err := d.Dial(url+"/in/s", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	v, _, err := d.Dial(url+"/out/s", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	r := &relay{Server: s}
	r.waitClients(t, "/out/s", 1, 1, 0)
	for i, size := range []int{10, 200, 70000, 1} {
		msg := bytes.Repeat([]byte{byte(i)}, size)
		send(t, pub, bin, msg)
		if mt, b := read(t, v); mt != bin || !bytes.Equal(b, msg) {
			t.Fatalf("message %d: got type %d, %d bytes, want %d bytes", i, mt, len(b), size)
		}
	}
}

// TestHTTPServerLimits checks what NewHTTPServer does to connections that
// never finish a request, or sit idle, or send huge headers, and that a
// websocket it upgrades is not bound by those request timeouts.
func TestHTTPServerLimits(t *testing.T) {
	s, addr := serveLimited(t, 200*time.Millisecond)
	for _, tc := range []struct {
		name   string
		send   string
		answer string // the start of what the server answers before closing, if anything
	}{
		{"silent connection", "", ""},
		{"headers never finished", "GET / HTTP/1.1\r\nHost: relay\r\n", ""},
		{"websocket handshake never finished", "GET /out/x HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n", ""},
		{"body never finished", "POST /api/deny HTTP/1.1\r\nHost: relay\r\nContent-Length: 100\r\n\r\n{", "HTTP/1.1 404"},
		{"idle after a request", "GET /healthcheck HTTP/1.1\r\nHost: relay\r\n\r\n", "HTTP/1.1 200"},
		{"headers too large", "GET / HTTP/1.1\r\nHost: relay\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n", "HTTP/1.1 431"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			// The server must close the connection well before this.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the server kept the connection open: %v (read %q)", err, got)
			}
			if !strings.HasPrefix(string(got), tc.answer) || tc.answer == "" && len(got) > 0 {
				t.Fatalf("the server answered %q, want %q", firstLine(got), tc.answer)
			}
		})
	}
	t.Run("websocket outlives the request timeouts", func(t *testing.T) { websocketOutlivesTimeouts(t, s, addr) })
}

// serveLimited serves a relay with handshake timeout timeout through
// NewHTTPServer on a loopback port until the test ends.
func serveLimited(t *testing.T, timeout time.Duration) (*Server, string) {
	s := newServer(t, Config{HandshakeTimeout: timeout}, testutil.Log(t))
	hs := s.NewHTTPServer("127.0.0.1:0")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		_ = hs.Close()
		<-served
	})
	return s, ln.Addr().String()
}

// websocketOutlivesTimeouts: a stream's websockets, idle longer than the
// request timeouts of the server at addr, still carry the stream.
func websocketOutlivesTimeouts(t *testing.T, s *Server, addr string) {
	ws := "ws://" + addr
	pub, _, err := websocket.DefaultDialer.Dial(ws+"/in/s", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	v, _, err := websocket.DefaultDialer.Dial(ws+"/out/s", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// A connection that sends nothing, opened now, is closed once the
	// request timeouts have passed: wait for that, not for a time.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	r := &relay{Server: s}
	r.waitClients(t, "/out/s", 1, 1, 0)
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(idle); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the idle connection was not closed: %v", err)
	}
	// The websockets, idle as long, still carry the stream.
	send(t, pub, bin, []byte("still here"))
	if _, b := read(t, v); string(b) != "still here" {
		t.Fatalf("got %q", b)
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\r\n")
	return s
}
