package reconws

import (
	"syscall"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/sockq"
	"github.com/vwlab/vw/internal/wsframe"
)

// Backlog is what a client has taken from Send that its peer has not yet
// received: what a sender on a slow link is behind by.
type Backlog struct {
	// Queued is the bytes (as framed) that Send accepted and the write
	// pump has not yet written to the connection.
	Queued int64 `json:"queued"`
	// Unacked is the bytes written to the connection that the peer's TCP
	// has not acknowledged yet: in the socket's send buffer or on the
	// wire. Zero where the system cannot tell (it can on Linux).
	Unacked int64 `json:"unacked"`
	// Written counts every byte written to any connection of the client.
	Written uint64 `json:"written"`
}

// Bytes is the whole backlog: queued and unacknowledged.
func (b Backlog) Bytes() int64 { return b.Queued + b.Unacked }

// Backlog returns the client's backlog now. It is cheap (one system call
// while connected) and safe to call from any goroutine.
func (c *Client) Backlog() Backlog {
	b := Backlog{Queued: max(0, c.queued.Load()), Written: c.written.Load()}
	if r := c.raw.Load(); r != nil {
		b.Unacked = sockq.Unacked(r.rc)
	}
	return b
}

// acked is how many bytes the peer has acknowledged, as far as the system
// tells: without unacknowledged counts, what was written.
func (c *Client) acked() uint64 {
	b := c.Backlog()
	return b.Written - uint64(b.Unacked)
}

// frameLen is how many bytes appendFrame makes of an n-byte message.
func frameLen(n int) int64 { return int64(wsframe.HeaderLen(n, true) + n) }

// rawConn is a connection's socket, for asking the system about it.
type rawConn struct{ rc syscall.RawConn }

// rawOf finds the TCP socket under a websocket connection, through TLS.
func rawOf(conn *websocket.Conn) *rawConn {
	rc := sockq.Of(conn.NetConn())
	if rc == nil {
		return nil
	}
	return &rawConn{rc}
}
