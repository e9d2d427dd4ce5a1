// Package testrelay owns the tiny real websocket relay that the tests of the
// websocket clients (reconws, rwc) push to: it records what its clients
// send, their handshake headers and their close codes, can talk back, and
// can play a stuck peer (never reading, paused, or gated), over ws or wss.
// Stop drops every connection without a close frame, as a crashing relay
// would.
package testrelay

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// Msg is a message a relay received or sends.
type Msg struct {
	Data []byte
	Text bool
}

// Options shape a relay; the zero value is a plain ws relay on a free
// loopback port that reads everything.
type Options struct {
	// Addr is the address to listen on ("127.0.0.1:0" if empty), so that
	// a test can bring a relay back on the address of one it stopped.
	Addr string
	// Stall: handlers never read, so no pongs, and TCP back-pressure
	// reaches the client after kilobytes.
	Stall bool
	// Gate, if set, holds the handlers back from reading until it is
	// closed.
	Gate chan struct{}
	// TLS serves wss with httptest's self-signed certificate; TLSConfig
	// trusts it.
	TLS bool
}

// Relay is a running test relay; New stops it when the test ends.
type Relay struct {
	t      testing.TB
	srv    *httptest.Server
	scheme string
	opt    Options

	mu      sync.Mutex
	msgs    []Msg
	headers []http.Header
	closes  []int
	conns   map[*websocket.Conn]bool
	quit    chan struct{}
	resume  chan struct{} // while set, handlers stop reading until it is closed
	wg      sync.WaitGroup
}

// New starts a relay listening as opt says.
func New(t testing.TB, opt Options) *Relay {
	t.Helper()
	if opt.Addr == "" {
		opt.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", opt.Addr)
	if err != nil {
		t.Fatalf("listen %s: %v", opt.Addr, err)
	}
	r := &Relay{t: t, opt: opt, conns: map[*websocket.Conn]bool{}, quit: make(chan struct{})}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.handle))
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes
	if opt.TLS {
		r.srv.StartTLS()
		r.scheme = "wss"
	} else {
		r.srv.Start()
		r.scheme = "ws"
	}
	t.Cleanup(r.Stop)
	return r
}

// URL is where clients push to.
func (r *Relay) URL() string { return r.scheme + "://" + r.Addr() + "/in/test" }

// Addr is the address the relay listens on.
func (r *Relay) Addr() string { return r.srv.Listener.Addr().String() }

// TLSConfig trusts the relay's self-signed certificate; nil for a ws relay.
func (r *Relay) TLSConfig() *tls.Config {
	if !r.opt.TLS {
		return nil
	}
	return &tls.Config{RootCAs: r.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
}

// Certificate is the relay's self-signed certificate; nil for a ws relay.
func (r *Relay) Certificate() *x509.Certificate { return r.srv.Certificate() }

func (r *Relay) handle(w http.ResponseWriter, req *http.Request) {
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
	if r.opt.Stall {
		// A small receive buffer makes back-pressure reach the client
		// after kilobytes rather than tens of megabytes.
		if tc, ok := conn.NetConn().(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		<-r.quit
		return
	}
	if r.opt.Gate != nil {
		select {
		case <-r.opt.Gate:
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
		r.msgs = append(r.msgs, Msg{Data: data, Text: typ == websocket.TextMessage})
		r.mu.Unlock()
	}
}

// Send writes a message to every connected client.
func (r *Relay) Send(m Msg) {
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
func (r *Relay) Stop() {
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

// Msgs returns the messages received so far, in order.
func (r *Relay) Msgs() []Msg { return locked(r, func() []Msg { return slices.Clone(r.msgs) }) }

// Count is the number of messages received so far.
func (r *Relay) Count() int { return locked(r, func() int { return len(r.msgs) }) }

// Headers returns the request headers of every handshake, refused ones too.
func (r *Relay) Headers() []http.Header {
	return locked(r, func() []http.Header { return slices.Clone(r.headers) })
}

// Closes returns the codes of the close frames the clients sent.
func (r *Relay) Closes() []int { return locked(r, func() []int { return slices.Clone(r.closes) }) }

// Conns is the number of clients connected now.
func (r *Relay) Conns() int { return locked(r, func() int { return len(r.conns) }) }

// locked reads what the handlers write, under the relay's lock.
func locked[T any](r *Relay, read func() T) T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return read()
}

// Pause makes the handlers stop reading (after the message each is reading
// now) until Resume: the clients' writes back up.
func (r *Relay) Pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resume = make(chan struct{})
}

// Resume lets paused handlers read again.
func (r *Relay) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.resume)
	r.resume = nil
}
