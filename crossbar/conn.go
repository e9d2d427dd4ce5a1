package crossbar

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/wsframe"
)

// The relay writes websocket frames itself (with package wsframe, as the
// reconnecting client does), straight to the connection, so that a message
// is framed once for all viewers and a viewer's backlog leaves in one
// writev. gorilla/websocket still does the handshake and all reading,
// and it writes now and then on its own (a close frame answering a protocol
// error or an oversized message, from the reading goroutine). frameConn puts
// every write, ours and gorilla's, under one mutex so that frames never
// interleave.
//
// A viewer with nothing queued takes a message straight from the publisher's
// goroutine (tryWrite): one non-blocking write of the whole frame, which
// costs no goroutine wake-up, no select and no deadline. A socket that takes
// only part of the frame leaves the rest to the viewer's pump, written before
// anything else; one that takes nothing leaves the whole message to the
// queue. So a stalled viewer still never makes the publisher wait.

// closeFrame returns a close frame with the code and a reason cut to fit a
// control frame.
func closeFrame(code int, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return wsframe.AppendFrame(nil, wsframe.Close, websocket.FormatCloseMessage(code, reason), nil)
}

// frameConn is a client's hijacked connection as the relay writes to it:
// whole frames only, from whichever writer the write side allows, under one
// lock; non-blocking direct writes, and the rest of a frame one of them
// began, due first; a batch in one writev (gathered into one write under
// TLS); a write deadline moved only when half of it is used up. gorilla
// reads through it too.
type frameConn struct {
	net.Conn
	mu sync.Mutex
	// writev is set when the connection can write many buffers in one
	// syscall (a TCP or Unix socket); otherwise, under TLS say, buffers are
	// gathered in bw and flushed once so that a batch is one write.
	writev bool
	bw     *bufio.Writer
	// deadline is the write deadline in force; zero is none.
	deadline time.Time

	// Direct writes. raw is the socket, nil where a write cannot go straight
	// to it (TLS); direct allows them, from when the pump has written what
	// must go first until a close frame is written.
	raw    syscall.RawConn
	direct bool
	// rest is the unwritten tail of a frame a direct write began: the next
	// write of any kind starts with it.
	rest []byte
	// The one direct write in progress: rawWrite (made once, so that a
	// write allocates nothing) writes rawBuf and leaves rawN.
	rawWrite func(fd uintptr) bool
	rawBuf   []byte
	rawN     int
	iov      net.Buffers
	// partials counts direct writes the socket took only part of.
	partials atomic.Uint64
}

func newFrameConn(c net.Conn) *frameConn {
	fc := &frameConn{Conn: c}
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		fc.writev = true
		if sc, ok := c.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				fc.raw = raw
				fc.rawWrite = fc.writeRaw
			}
		}
	default:
		fc.bw = bufio.NewWriterSize(c, 64<<10)
	}
	return fc
}

// Write is gorilla's path: the handshake response and, after it, only the
// close frame that answers a protocol error or an oversized message, after
// which no direct write may follow.
func (c *frameConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.direct = false
	if len(c.rest) > 0 {
		if _, err := c.writeLocked(nil); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

// allowDirect lets tryWrite write: the pump calls it once what must reach
// the client first is written.
func (c *frameConn) allowDirect() {
	c.mu.Lock()
	c.direct = c.raw != nil
	c.mu.Unlock()
}

// tryWrite writes as much of frame as the socket takes now, without waiting
// for the lock, the socket or a deadline. It reports whether it wrote any:
// all of it, or a part, the rest then being due first in the next write
// (partial says so; the caller must see that the pump makes one).
func (c *frameConn) tryWrite(frame []byte) (took, partial bool) {
	if !c.mu.TryLock() {
		return false, false
	}
	defer c.mu.Unlock()
	if !c.direct || len(c.rest) > 0 {
		return false, false
	}
	c.rawBuf, c.rawN = frame, 0
	// An error (a closed connection, a passed deadline) writes nothing:
	// the queued message's write will meet it and end the client.
	err := c.raw.Write(c.rawWrite)
	n := c.rawN
	c.rawBuf = nil
	if err != nil || n == 0 {
		return false, false
	}
	if n < len(frame) {
		c.rest = frame[n:]
		c.partials.Add(1)
		return true, true
	}
	return true, false
}

// writeRaw is one non-blocking write of rawBuf to the socket. It returns
// true whatever happened, so that the runtime never waits for the socket.
func (c *frameConn) writeRaw(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), c.rawBuf)
		if err == syscall.EINTR {
			continue
		}
		c.rawN = max(n, 0)
		return true
	}
}

// SetWriteDeadline waits for a write in progress, so that gorilla cannot cut
// short a batch it did not start.
func (c *frameConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetWriteDeadline(t)
}

// writeBuffers writes all of bufs, in one syscall where the connection
// allows, within timeout: at least half of it, at most all of it, since the
// deadline is moved only when less than half of the timeout is left (moving
// it costs a timer update, once per write per viewer otherwise). The rest
// of a frame a direct write began, if any, goes first. It consumes bufs.
func (c *frameConn) writeBuffers(bufs net.Buffers, timeout time.Duration) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); c.deadline.Sub(now) < timeout/2 {
		c.deadline = now.Add(timeout)
		if err := c.Conn.SetWriteDeadline(c.deadline); err != nil {
			return 0, err
		}
	}
	return c.writeLocked(bufs)
}

// writeBy writes all of bufs before the deadline. It is for the close
// frame, the last: no direct write follows it.
func (c *frameConn) writeBy(bufs net.Buffers, deadline time.Time) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.direct = false
	c.deadline = deadline
	if err := c.Conn.SetWriteDeadline(deadline); err != nil {
		return 0, err
	}
	return c.writeLocked(bufs)
}

// writeLocked writes the rest of a frame a direct write began, if any, then
// bufs. It returns how many bytes of bufs it wrote.
func (c *frameConn) writeLocked(bufs net.Buffers) (int64, error) {
	if len(c.rest) > 0 {
		k := int64(len(c.rest))
		c.iov = append(append(c.iov[:0], c.rest), bufs...)
		n, err := c.writeAll(c.iov)
		clear(c.iov[:cap(c.iov)])
		c.iov = c.iov[:0]
		if n < k {
			c.rest = c.rest[n:]
			return 0, err
		}
		c.rest = nil
		return n - k, err
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	return c.writeAll(bufs)
}

func (c *frameConn) writeAll(bufs net.Buffers) (int64, error) {
	if c.writev {
		return bufs.WriteTo(c.Conn)
	}
	var n int64
	for _, b := range bufs {
		k, err := c.bw.Write(b)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, c.bw.Flush()
}

// hijackWriter hands gorilla's Upgrade a frameConn in place of the raw
// connection.
type hijackWriter struct {
	http.ResponseWriter
	conn *frameConn
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the HTTP server cannot hand over the connection (no http.Hijacker)")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The HTTP server's read and write deadlines for the handshake request
	// must not cut the websocket short: the relay keeps its own from here.
	if err := nc.SetDeadline(time.Time{}); err != nil {
		_ = nc.Close()
		return nil, nil, err
	}
	h.conn = newFrameConn(nc)
	return h.conn, brw, nil
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
