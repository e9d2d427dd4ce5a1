// Package netcap owns a TCP proxy that carries its connections over a link
// of a set rate, each way, as a congested network path would: the tests and
// benchmarks of live delivery put it between a sender and a receiver (vw
// stream and a relay, a relay and a viewer) and cap or lift the rate while
// data flows.
//
// Like a real bottleneck with a short queue, the proxy holds little: it
// takes bytes from a socket only as fast as the link carries them, and its
// sockets' receive buffers are small, so the backlog builds up at the
// sender, where the sender can see it, and not inside the proxy.
package netcap

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultBuffer is the receive buffer the proxy asks for on its sockets:
// the least the kernel grants (it doubles this, and has a floor), so that
// the proxy's own queue, which the sender cannot see, stays as short as
// the system allows. A window this small carries a capped link's rate
// faithfully up to about 100 KB/s (1 Mbit/s streams at any share); above
// that the link falls short of its cap.
const DefaultBuffer = 1 << 10

// Proxy is a running proxy. Create it with Listen.
type Proxy struct {
	ln     net.Listener
	target string
	dialer net.Dialer
	// Up carries what clients send to the target, Down the replies.
	Up, Down *Link

	mu       sync.Mutex
	conns    map[net.Conn]bool
	accepted int
	quit     chan struct{}
	closed   bool
	wg       sync.WaitGroup
}

// Listen starts a proxy on a free loopback port that forwards every
// connection to target, at no cap until SetRate says otherwise.
func Listen(target string) (*Proxy, error) {
	lc := net.ListenConfig{Control: smallReceiveBuffer}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		ln: ln, target: target,
		dialer: net.Dialer{Timeout: 5 * time.Second, Control: smallReceiveBuffer},
		Up:     &Link{}, Down: &Link{},
		conns: map[net.Conn]bool{}, quit: make(chan struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// SetRate caps both directions, in bytes per second; 0 lifts a cap.
func (p *Proxy) SetRate(up, down float64) {
	p.Up.SetRate(up)
	p.Down.SetRate(down)
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted is the number of connections accepted so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Open is the number of connections open now.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) / 2
}

// Close stops accepting, drops every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.quit)
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve carries one connection until either side ends it.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	t, err := p.dialer.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, t) {
		return
	}
	var once sync.Once
	end := func() {
		once.Do(func() {
			c.Close()
			t.Close()
		})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Up.carry(t, c, p.quit)
		end()
	}()
	p.Down.carry(c, t, p.quit)
	end()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, t)
	p.mu.Unlock()
}

func (p *Proxy) track(c, t net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		t.Close()
		return false
	}
	p.accepted++
	p.conns[c], p.conns[t] = true, true
	return true
}

// Link is one direction of the proxy's path: it carries bytes at Rate,
// shared by every connection, in the order they were read.
type Link struct {
	mu    sync.Mutex
	rate  float64   // bytes per second; 0 is no cap
	free  time.Time // when the link will have carried all it was given
	bytes atomic.Uint64
}

// SetRate caps the link at rate bytes per second; 0 lifts the cap. Bytes
// already on the link finish at the rate they started at.
func (l *Link) SetRate(rate float64) {
	l.mu.Lock()
	l.rate = max(0, rate)
	l.mu.Unlock()
}

// CapFor caps the link at rate for d, calls last (if not nil) just before
// lifting the cap, lifts it, and returns when the cap began and ended. The
// wait is real time on purpose: how long a link stays slow is the
// scenario. It lifts the cap early if ctx ends.
func (l *Link) CapFor(ctx context.Context, rate float64, d time.Duration, last func()) (capped, lifted time.Time) {
	l.SetRate(rate)
	capped = time.Now()
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
	if last != nil {
		last()
	}
	l.SetRate(0)
	return capped, time.Now()
}

// Rate is the link's cap in bytes per second, 0 for none.
func (l *Link) Rate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate
}

// Bytes is how many bytes the link has carried.
func (l *Link) Bytes() uint64 { return l.bytes.Load() }

// chunk is how much to read at once: at a cap, about 5 ms of the link's
// time (at least 512 bytes), so that the pacing is smooth and the proxy
// holds little; without one, as much as is there.
func (l *Link) chunk() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate <= 0 {
		return 64 << 10
	}
	return min(64<<10, max(512, int(l.rate/200)))
}

// pass waits until n bytes have crossed the link, or quit is closed.
func (l *Link) pass(n int, quit <-chan struct{}) bool {
	l.mu.Lock()
	if l.rate <= 0 {
		l.free = time.Time{}
		l.mu.Unlock()
		return true
	}
	// A link that went idle keeps up to 20 ms of credit: the sender's
	// TCP refills a window this small in steps, and the gaps between
	// them are the emulation's, not the link's.
	now := time.Now()
	if credit := now.Add(-20 * time.Millisecond); l.free.Before(credit) {
		l.free = credit
	}
	l.free = l.free.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	wait := l.free.Sub(now)
	l.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-quit:
		return false
	}
}

// carry copies src to dst over the link until either fails.
func (l *Link) carry(dst, src net.Conn, quit <-chan struct{}) {
	buf := make([]byte, 64<<10)
	raw, _ := src.(syscall.Conn)
	for {
		n, err := src.Read(buf[:l.chunk()])
		quickAck(raw)
		if n > 0 {
			if !l.pass(n, quit) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			l.bytes.Add(uint64(n))
		}
		if err != nil {
			return
		}
	}
}

// quickAck makes the socket acknowledge at once what it receives next
// (TCP_QUICKACK does not stay set), so the sender learns as soon as the
// proxy has made room: with a window this small, an acknowledgement
// delayed by the usual 40 ms would starve the link below its rate.
func quickAck(c syscall.Conn) {
	if c == nil {
		return
	}
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
	}
}

// smallReceiveBuffer sets a socket's receive buffer before it connects
// (or listens, for the sockets it accepts), so that the window it offers
// is small from the start.
func smallReceiveBuffer(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, DefaultBuffer)
	})
	return errors.Join(err, serr)
}
