package reconws

import (
	"context"
	"errors"
	"time"

	"github.com/gorilla/websocket"
)

// pieceSize is about how many bytes of a backlog go to the socket in one
// write. Between pieces the write loop answers pings and sends its own, so
// on a slow link a control frame waits behind one piece, not behind the
// whole backlog.
const pieceSize = 16 << 10

// serve runs one connection: the read loop in its own goroutine, the write
// loop here. It returns stopped when the client was told to stop (by ctx or
// Close), otherwise the error that ended the connection. The write loop is
// one select on purpose: it is the connection's only writer, so data,
// pings, pongs and the close must be ordered in one place.
func (c *Client) serve(ctx, dialCtx context.Context, conn *websocket.Conn) (stopped bool, err error) {
	readErr := make(chan error, 1)
	pings := make(chan string, 1)
	go c.readLoop(conn, pings, readErr)

	// Once told to stop, the connection gets CloseTimeout in all: a write
	// stuck on a peer that stopped reading is cut off then, however long
	// WriteWait is.
	served, watched := make(chan struct{}), make(chan struct{})
	unwatch := context.AfterFunc(dialCtx, func() {
		defer close(watched)
		t := time.NewTimer(c.cfg.CloseTimeout)
		defer t.Stop()
		select {
		case <-served:
		case <-t.C:
			conn.NetConn().Close()
		}
	})
	defer func() {
		close(served)
		if !unwatch() {
			<-watched
		}
	}()

	ping := time.NewTicker(c.cfg.PingInterval)
	defer ping.Stop()
	// On a slow link the peer's pongs come back behind everything queued
	// before the ping, which may be longer than PongWait: a peer whose TCP
	// keeps acknowledging data is alive all the same.
	progress := time.NewTicker(c.cfg.PongWait / 3)
	defer progress.Stop()
	acked := c.acked()
	w := &writer{c: c, conn: conn, tick: ping.C, pings: pings}
	fail := func(err error) (bool, error) {
		conn.Close()
		<-readErr
		return false, err
	}
	for {
		select {
		case m := <-c.send:
			if err := w.backlog(m, time.Time{}); err != nil {
				return fail(err)
			}
		case <-ping.C:
			if err := w.control(websocket.PingMessage, nil, time.Time{}); err != nil {
				return fail(err)
			}
		case p := <-pings:
			if err := w.control(websocket.PongMessage, []byte(p), time.Time{}); err != nil {
				return fail(err)
			}
		case <-progress.C:
			if a := c.acked(); a > acked {
				acked = a
				_ = conn.NetConn().SetReadDeadline(time.Now().Add(c.cfg.PongWait))
			}
		case err := <-readErr:
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
				// The peer closed: answer its close frame, as RFC 6455
				// §5.5.1 asks, before dropping the TCP connection.
				_ = conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
					time.Now().Add(c.cfg.WriteWait))
			}
			conn.Close()
			return false, err
		case <-ctx.Done():
			c.closeHandshake(conn, readErr, websocket.CloseGoingAway, time.Now().Add(c.cfg.CloseTimeout))
			return true, nil
		case <-c.closing:
			deadline := time.Now().Add(c.cfg.CloseTimeout)
			if err := w.flush(deadline); err != nil {
				c.log.WithField("err", err).Debug("could not flush the queue before closing")
				conn.Close()
				<-readErr
				return true, nil
			}
			c.closeHandshake(conn, readErr, websocket.CloseNormalClosure, deadline)
			return true, nil
		}
	}
}

// writer is the write side of one connection, used only by serve's
// goroutine: the connection's only writer, so it may write frames it built
// itself straight to the net.Conn; the read loop hands pings and close
// frames over instead of answering them itself.
type writer struct {
	c     *Client
	conn  *websocket.Conn
	tick  <-chan time.Time // time to ping
	pings <-chan string    // pings to answer
	buf   []byte
	ends  []int // where each frame in buf ends
	sizes []int // the payload bytes of each frame in buf
}

// backlog frames m and whatever else is queued (up to MaxBatch bytes) into
// one buffer and writes it in pieces of whole frames, with control frames
// that fell due in between. Each piece gets WriteWait, or the whole backlog
// until deadline if that is set.
func (w *writer) backlog(m outMsg, deadline time.Time) error {
	c := w.c
	w.buf = appendFrame(w.buf[:0], m.data, m.text)
	w.ends = append(w.ends[:0], len(w.buf))
	w.sizes = append(w.sizes[:0], len(m.data))
batch:
	for len(w.buf) < c.cfg.MaxBatch {
		select {
		case m = <-c.send:
			w.buf = appendFrame(w.buf, m.data, m.text)
			w.ends = append(w.ends, len(w.buf))
			w.sizes = append(w.sizes, len(m.data))
		default:
			break batch
		}
	}
	start, frames, payload := 0, uint64(0), uint64(0)
	for i, end := range w.ends {
		frames++
		payload += uint64(w.sizes[i])
		if end-start < pieceSize && i+1 < len(w.ends) {
			continue
		}
		n, err := w.write(w.buf[start:end], deadline)
		if err == nil && end < len(w.buf) {
			err = w.due(deadline)
		}
		if err != nil {
			c.queued.Add(-int64(len(w.buf) - start - n)) // lost with the connection
			return err
		}
		c.sent.Add(frames)
		c.sentBytes.Add(payload)
		start, frames, payload = end, 0, 0
	}
	if cap(w.buf) > 4*c.cfg.MaxBatch {
		w.buf = nil // one huge message must not pin its buffer for ever
	}
	return nil
}

// write writes b to the socket.
func (w *writer) write(b []byte, deadline time.Time) (int, error) {
	if deadline.IsZero() {
		deadline = time.Now().Add(w.c.cfg.WriteWait)
	}
	nc := w.conn.NetConn()
	if err := nc.SetWriteDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := nc.Write(b)
	w.c.queued.Add(-int64(n))
	w.c.written.Add(uint64(n))
	return n, err
}

// due sends the control frames that fell due: a ping, a pong.
func (w *writer) due(deadline time.Time) error {
	select {
	case <-w.tick:
		return w.control(websocket.PingMessage, nil, deadline)
	case p := <-w.pings:
		return w.control(websocket.PongMessage, []byte(p), deadline)
	default:
		return nil
	}
}

func (w *writer) control(typ int, data []byte, deadline time.Time) error {
	if deadline.IsZero() {
		deadline = time.Now().Add(w.c.cfg.WriteWait)
	}
	return w.conn.WriteControl(typ, data, deadline)
}

// flush writes everything queued, for a graceful close.
func (w *writer) flush(deadline time.Time) error {
	for {
		select {
		case m := <-w.c.send:
			if err := w.backlog(m, deadline); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// closeHandshake sends a close frame, waits for the peer's (the read loop
// ends with it) until deadline, and closes the connection.
func (c *Client) closeHandshake(conn *websocket.Conn, readErr <-chan error, code int, deadline time.Time) {
	err := conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), deadline)
	if err == nil {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-readErr:
			conn.Close()
			return
		case <-t.C:
		}
	}
	conn.Close()
	<-readErr
}

// readLoop reads until the connection fails, delivering data messages and
// keeping the read deadline ahead while the peer shows signs of life.
func (c *Client) readLoop(conn *websocket.Conn, pings chan<- string, done chan<- error) {
	alive := func() { _ = conn.SetReadDeadline(time.Now().Add(c.cfg.PongWait)) }
	conn.SetReadLimit(c.cfg.ReadLimit)
	alive()
	conn.SetPongHandler(func(string) error { alive(); return nil })
	conn.SetPingHandler(func(p string) error {
		alive()
		select {
		case pings <- p:
		default: // a pong is already due; the peer will ping again
		}
		return nil
	})
	// The write loop answers close frames; gorilla's default handler would
	// write from this goroutine.
	conn.SetCloseHandler(func(int, string) error { return nil })
	for {
		typ, data, err := conn.ReadMessage()
		if err != nil {
			done <- err
			return
		}
		alive()
		if c.cfg.OnMessage != nil {
			c.cfg.OnMessage(Message{Data: data, Text: typ == websocket.TextMessage})
		}
	}
}
