package rwc

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// relay is a tiny real websocket server for the tests: it records what its
// clients send, the handshake headers and the close codes, can talk back,
// and can stop reading to play a stuck peer.
type relay struct {
	t      testing.TB
	srv    *httptest.Server
	scheme string
	stall  bool          // handlers do not read: no pongs, TCP back-pressure
	gate   chan struct{} // if set, handlers start reading when it is closed

	mu      sync.Mutex
	msgs    []msg
	headers []http.Header
	closes  []int
	conns   map[*websocket.Conn]bool
	quit    chan struct{}
	resume  chan struct{} // while set, handlers stop reading until it is closed
	wg      sync.WaitGroup
}

func newRelay(t testing.TB) *relay { return newRelayAt(t, "127.0.0.1:0", false) }

// newRelayAt listens on addr, so that a test can bring a relay back on the
// address of one it stopped.
func newRelayAt(t testing.TB, addr string, stall bool) *relay {
	t.Helper()
	return newRelayGated(t, addr, stall, nil)
}

func newRelayGated(t testing.TB, addr string, stall bool, gate chan struct{}) *relay {
	t.Helper()
	return newRelayTLS(t, addr, stall, gate, false)
}

// msg is what a relay received.
type msg struct {
	Data []byte
	Text bool
}

func newRelayTLS(t testing.TB, addr string, stall bool, gate chan struct{}, useTLS bool) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	r := &relay{t: t, stall: stall, gate: gate, conns: map[*websocket.Conn]bool{}, quit: make(chan struct{})}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.handle))
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes
	if useTLS {
		r.srv.StartTLS()
		r.scheme = "wss"
	} else {
		r.srv.Start()
		r.scheme = "ws"
	}
	t.Cleanup(r.Stop)
	return r
}

func (r *relay) URL() string { return r.scheme + "://" + r.srv.Listener.Addr().String() + "/in/test" }

// TLSConfig trusts the relay's self-signed certificate (wss only).
func (r *relay) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: r.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
}

func (r *relay) Addr() string { return r.srv.Listener.Addr().String() }

func (r *relay) handle(w http.ResponseWriter, req *http.Request) {
	// Recorded before the upgrade answers, so a client that sees 101 can
	// count on it.
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	r.mu.Unlock()
	up := websocket.Upgrader{}
	conn, err := up.Upgrade(w, req, nil)
	if err != nil {
		return
	}
	r.wg.Add(1)
	defer r.wg.Done()
	r.mu.Lock()
	select {
	case <-r.quit:
		r.mu.Unlock()
		conn.Close()
		return
	default:
	}
	r.conns[conn] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, conn)
		r.mu.Unlock()
		conn.Close()
	}()
	if r.stall {
		// A small receive buffer makes back-pressure reach the client
		// after kilobytes rather than tens of megabytes.
		if tc, ok := conn.NetConn().(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		<-r.quit
		return
	}
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-r.quit:
			return
		}
	}
	for {
		r.mu.Lock()
		resume := r.resume
		r.mu.Unlock()
		if resume != nil {
			select {
			case <-resume:
			case <-r.quit:
				return
			}
		}
		typ, data, err := conn.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				r.mu.Lock()
				r.closes = append(r.closes, ce.Code)
				r.mu.Unlock()
			}
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, msg{Data: data, Text: typ == websocket.TextMessage})
		r.mu.Unlock()
	}
}

// Send writes a message to every connected client.
func (r *relay) Send(m msg) {
	typ := websocket.BinaryMessage
	if m.Text {
		typ = websocket.TextMessage
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		if err := c.WriteMessage(typ, m.Data); err != nil {
			r.t.Errorf("relay send: %v", err)
		}
	}
}

// Stop closes the listener and every connection abruptly (no close frame),
// as a crashing relay would, and waits for the handlers.
func (r *relay) Stop() {
	r.mu.Lock()
	select {
	case <-r.quit:
		r.mu.Unlock()
		return
	default:
	}
	close(r.quit)
	r.srv.Listener.Close()
	for c := range r.conns {
		c.NetConn().Close()
	}
	r.mu.Unlock()
	r.srv.Close()
	r.wg.Wait()
}

func (r *relay) Msgs() []msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]msg(nil), r.msgs...)
}

func (r *relay) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *relay) Headers() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

func (r *relay) Closes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.closes...)
}

func (r *relay) Conns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// Pause makes the handlers stop reading (after the message each is reading
// now) until Resume: the clients' writes back up.
func (r *relay) Pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resume = make(chan struct{})
}

func (r *relay) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.resume)
	r.resume = nil
}
