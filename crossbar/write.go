package crossbar

import (
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/wsframe"
)

// The write side. Who may write to a client's connection, and when:
//
//   - The write pump, one goroutine per client, started and joined by
//     serveWS, writes everything that is not a direct write: queued
//     messages (a backlog in one writev), pongs, pings, the rest of a frame
//     a direct write began (always first), and the close frame at the end.
//   - The publisher's goroutine may write one message to a viewer directly
//     (direct, the viewer's hub.SubConfig.Direct), and only then: the pump
//     has allowed it (after what must go first), nothing is queued (the
//     hub's promise), the connection's lock is free at once, and the whole
//     frame is ready. It never waits; what the socket does not take now is
//     the pump's to finish.
//   - gorilla/websocket writes on its own only from the reading goroutine:
//     the handshake response, and a close frame answering a protocol error
//     or an oversized message, after which no direct write follows.
//
// Every write goes through the client's frameConn (conn.go), under its one
// lock, so frames never interleave. Anyone else who wants a client closed
// (a drop, drop.go) asks the pump.

// writeSide is what the write pump keeps, and what it is sent.
type writeSide struct {
	pong  chan []byte   // a pong owed, from the reader's ping handler
	flush chan struct{} // a direct write left the rest of a frame to the pump

	// The pump's alone, reused from one batch to the next.
	iov   [][]byte
	hdrs  []byte
	batch []*hub.Message
}

// maxBatch bounds the messages one writev carries, and maxBatchBytes its
// bytes (one message may be larger): a pump stuck in a write holds no more.
const (
	maxBatch      = 64
	maxBatchBytes = 256 << 10
)

// writePump is the client's one writer (see above) until the client ends:
// by a drop, whose close it sends (finish), or by the reader stopping,
// whose close frame it answers. When it ends it closes the connection so
// that the reader ends too. A viewer's replay (its stream's PAT/PMT and
// latest GOP) goes before anything from its queue.
func (c *client) writePump(replay []*hub.Message) {
	defer func() { _ = c.nc.Close() }()
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	var queue <-chan *hub.Message
	var kicked <-chan struct{}
	if c.sub != nil {
		queue, kicked = c.sub.C(), c.sub.Done()
	}
	if err := c.writeReplay(replay); err != nil {
		c.writeFailed(err)
		return
	}
	if c.sub != nil {
		c.shed.replayedAt.Store(time.Now().UnixNano())
		c.nc.allowDirect()
	}
	for {
		select {
		case m := <-queue:
			// A viewer the hub has given up on gets nothing more.
			select {
			case <-kicked:
				c.ended()
				return
			default:
			}
			if err := c.writeQueued(m); err != nil {
				c.writeFailed(err)
				return
			}
		case <-c.writer.flush:
			if _, err := c.nc.writeBuffers(nil, c.s.cfg.WriteTimeout); err != nil {
				c.writeFailed(err)
				return
			}
		case p := <-c.writer.pong:
			if err := c.writeControl(websocket.PongMessage, p); err != nil {
				c.writeFailed(err)
				return
			}
		case <-ping.C:
			if c.grant.Expired(c.s.cfg.Now()) {
				c.drop(c.endFor(dropExpired, 0))
				c.finish(true)
				return
			}
			if err := c.writeControl(websocket.PingMessage, nil); err != nil {
				c.writeFailed(err)
				return
			}
		case <-kicked:
			c.ended()
			return
		case <-c.reader.stop:
			if r := c.reader.closeReply; r != nil {
				_, _ = c.nc.writeBy(net.Buffers{r}, time.Now().Add(time.Second))
			}
			return
		case <-c.ctx.Done():
			c.ended()
			return
		}
	}
}

// writeReplay sends the messages a viewer starts with, in batches, before
// anything from its queue.
func (c *client) writeReplay(replay []*hub.Message) error {
	for len(replay) > 0 {
		n, size := 0, 0
		for n < len(replay) && n < maxBatch && size < maxBatchBytes {
			size += len(replay[n].Data)
			n++
		}
		if err := c.writeBatch(replay[:n], 0); err != nil {
			return err
		}
		replay = replay[n:]
	}
	return nil
}

// write sends m, taken from the queue, and whatever else is queued behind
// it, in one syscall.
func (c *client) write(m *hub.Message) error {
	w := &c.writer
	batch := append(w.batch[:0], m)
	size := len(m.Data)
drain:
	for len(batch) < maxBatch && size < maxBatchBytes {
		select {
		case m := <-c.queue():
			batch = append(batch, m)
			size += len(m.Data)
		default:
			break drain
		}
	}
	err := c.writeBatch(batch, len(batch))
	w.batch = batch[:0]
	return err
}

// writeBatch writes batch in one writev; consumed of them came from the
// queue. It clears batch, so that nothing written stays referenced.
func (c *client) writeBatch(batch []*hub.Message, consumed int) error {
	w := &c.writer
	iov := w.iov[:0]
	hdrs := w.hdrs[:0]
	var n uint64
	for _, m := range batch {
		n += uint64(len(m.Data))
		if f := frameOf(m); f != nil {
			iov = append(iov, f)
			continue
		}
		h := m.Header
		if h == nil {
			// Published by someone other than a relay reader: frame it here.
			k := wsframe.HeaderLen(len(m.Data), false)
			op := wsframe.Binary
			if m.Text {
				op = wsframe.Text
			}
			if cap(hdrs)-len(hdrs) < k {
				hdrs = make([]byte, 0, wsframe.MaxUnmasked*maxBatch) // earlier headers stay referenced by iov
			}
			hdrs = hdrs[:len(hdrs)+k]
			h = hdrs[len(hdrs)-k:]
			wsframe.PutHeader(h, op, len(m.Data), nil)
		}
		iov = append(iov, h, m.Data)
	}
	_, err := c.nc.writeBuffers(iov, c.s.cfg.WriteTimeout)
	clear(iov[:cap(iov)])
	k := len(batch)
	clear(batch)
	w.iov, w.hdrs = iov[:0], hdrs[:0]
	if err != nil {
		return err
	}
	c.msgsOut.Add(uint64(k))
	c.bytesOut.Add(n)
	if c.sub != nil {
		// Written: the hub may hand the next message over directly.
		c.sub.Consumed(consumed)
	}
	return nil
}

// frameOf returns m's frame, header and payload, when they are one
// contiguous buffer (as a relay reader publishes them); nil otherwise.
func frameOf(m *hub.Message) []byte {
	h := m.Header
	if h == nil {
		return nil
	}
	if len(m.Data) == 0 {
		return h
	}
	if cap(h) > len(h) && &h[:len(h)+1][len(h)] == &m.Data[0] {
		return h[:len(h)+len(m.Data)]
	}
	return nil
}

// direct is the viewer's hub.SubConfig.Direct: the publisher's goroutine
// writes a message straight to a viewer with nothing queued, if its socket
// takes it at once. A frame the socket takes only part of is finished by
// the pump, before anything else.
func (c *client) direct(m *hub.Message) bool {
	if c.shed.held.Load() {
		return false // skipping: its pump decides what goes
	}
	f := frameOf(m)
	if f == nil {
		return false
	}
	took, partial := c.nc.tryWrite(f)
	if !took {
		return false
	}
	// Counted now, the rest being due first: a backlog is never overstated
	// by more than this one frame's tail.
	c.msgsOut.Add(1)
	c.bytesOut.Add(uint64(len(m.Data)))
	if partial {
		select {
		case c.writer.flush <- struct{}{}:
		default:
		}
	}
	return true
}

func (c *client) queue() <-chan *hub.Message {
	if c.sub == nil {
		return nil
	}
	return c.sub.C()
}

func (c *client) writeControl(op int, payload []byte) error {
	_, err := c.nc.writeBuffers(net.Buffers{wsframe.AppendFrame(nil, op, payload, nil)}, c.s.cfg.WriteTimeout)
	return err
}

// closeWith starts the closing handshake and gives the client a moment to
// answer before the connection is closed, so that the close frame is not
// lost to a reset.
func (c *client) closeWith(code int, reason string) {
	if _, err := c.nc.writeBy(net.Buffers{closeFrame(code, reason)}, time.Now().Add(time.Second)); err != nil {
		return
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-c.reader.stop:
	case <-t.C:
	}
}
