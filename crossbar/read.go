package crossbar

import (
	"io"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/wsframe"
)

// The read side: the connection's handler goroutine reads every message
// (gorilla/websocket does the reading), publishes what publishers and peers
// send to the topic, framed once for every viewer, and, while it does, checks
// the topic's viewers' backlogs (dropBehind). It writes nothing itself: the
// pongs and the close reply it owes go to the write pump.

// readSide is what the handler goroutine keeps while it reads.
type readSide struct {
	sizeHint int // the last message's size: the next buffer's

	// For the pump: stop is closed when the reader has finished, and
	// closeReply, set before, is the close frame that answers the peer's.
	stop       chan struct{}
	closeReply []byte
}

// readPump reads until the connection fails or closes. The close handler
// notes the close frame to answer with; the pump writes it.
func (c *client) readPump() error {
	conn := c.conn
	conn.SetReadLimit(c.s.cfg.MaxMessage)
	wait := 2 * c.s.cfg.PingInterval
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	conn.SetPingHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		// One pong owed is enough, answering the latest ping: replace an
		// older one the pump has not written yet. Only this goroutine sends.
		select {
		case <-c.writer.pong:
		default:
		}
		select {
		case c.writer.pong <- []byte(data):
		default:
		}
		return nil
	})
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(wait))
	})
	conn.SetCloseHandler(func(code int, text string) error {
		if code == websocket.CloseNoStatusReceived {
			c.reader.closeReply = wsframe.AppendFrame(nil, wsframe.Close, nil, nil)
		} else {
			c.reader.closeReply = closeFrame(code, "")
		}
		return nil
	})
	for {
		mt, r, err := conn.NextReader()
		if err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		if c.role == Viewer {
			// One-way route: what a viewer sends goes nowhere.
			if _, err := io.Copy(io.Discard, r); err != nil {
				return err
			}
			c.ignored.Add(1)
			continue
		}
		m, err := c.readMessage(mt, r)
		if err != nil {
			return err
		}
		n := uint64(len(m.Data))
		if c.sub != nil {
			c.own.Add(n)
		}
		pos := c.topic.pos.Add(n)
		c.topic.ht.Publish(m)
		c.clusterPublish(m)
		if step := c.s.scanStep(); (pos-n)/step != pos/step {
			c.s.dropBehind(c.topic)
		}
		// Counted after publishing, so that a count seen means the message
		// is already in every queue.
		c.msgsIn.Add(1)
		c.bytesIn.Add(uint64(len(m.Data)))
	}
}

// readMessage reads one message into a new buffer with room for its frame
// header in front, so that header and payload are one contiguous frame that
// every viewer writes as is.
func (c *client) readMessage(mt int, r io.Reader) (*hub.Message, error) {
	const room = wsframe.MaxUnmasked
	buf := make([]byte, room, room+c.reader.sizeHint+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	n := len(buf) - room
	c.reader.sizeHint = max(n, 512)
	if spare := cap(buf) - len(buf); spare > 64 && spare > n/4 {
		// Sized for another message: this one lives as long as a viewer's
		// queue or the stream's keyframe cache holds it, so it moves to a
		// buffer that fits rather than keep the spare room alive.
		buf = append(make([]byte, 0, len(buf)), buf...)
	}
	h := wsframe.HeaderLen(n, false)
	wsframe.PutHeader(buf[room-h:room], mt, n, nil)
	return &hub.Message{
		Data:   buf[room:],
		Header: buf[room-h : room],
		Text:   mt == websocket.TextMessage,
		From:   c.id,
		At:     c.s.clock(),
	}, nil
}
