package crossbar

import (
	"context"
	"errors"
	"fmt"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/auth"
)

// Eviction: how the relay ends a client. The pump closes it, with a close
// frame; others ask by cancelling its context with a *closeCause
// (CloseClients, a deny, a backlog over QueueBytes) or through the hub's
// kick.

// ended closes a client whose subscription ended: for a reason given with
// its cancel (a backlog over QueueBytes), or kicked by the hub for a full
// queue.
func (c *client) ended() {
	if c.ctx.Err() != nil {
		c.closeForCause()
		return
	}
	c.dropSlow()
}

// closeForCause closes a client whose context ended: picked by CloseClients
// or a deny, dropped for its backlog, or the relay closing.
func (c *client) closeForCause() {
	var cc *closeCause
	if errors.As(context.Cause(c.ctx), &cc) {
		c.log.WithField("reason", cc.reason).Info("client closed by the relay")
		c.closeWith(cc.code, cc.reason)
		return
	}
	c.closeWith(websocket.CloseGoingAway, "relay shutting down")
}

// writeFailed ends a client whose write failed. A viewer whose deadline
// passed is counted as dropped, once, unless the hub already kicked it.
func (c *client) writeFailed(err error) {
	if isTimeout(err) && c.sub != nil {
		c.sub.Close() // no kick can come after this, so nothing counts twice
		if !c.sub.Kicked() && c.dropped.CompareAndSwap(false, true) {
			c.topic.timeouts.Add(1)
			c.log.WithField("err", err).Info("viewer dropped: write timed out")
			return
		}
		c.log.Info("viewer dropped: too slow")
		return
	}
	c.log.WithField("err", err).Debug("write failed")
}

// dropSlow closes a client the hub kicked for falling a whole queue behind.
func (c *client) dropSlow() {
	c.log.WithField("queue", c.s.cfg.Queue).Info("viewer dropped: too slow")
	c.closeWith(websocket.ClosePolicyViolation, fmt.Sprintf("too slow: fell %d messages behind", c.s.cfg.Queue))
}

// closeCause is why CloseClients closed a client.
type closeCause struct {
	code   int
	reason string
}

func (c *closeCause) Error() string {
	return fmt.Sprintf("closed by the relay: %d %s", c.code, c.reason)
}

// CloseClients closes every connected client that match picks, each with a
// close frame carrying code and reason (cut to fit), and returns how many it
// picked. It returns at once; the clients close within a moment.
func (s *Server) CloseClients(match func(ClientStats) bool, code int, reason string) int {
	return s.closeMatching(func(c *client) bool { return match(c.stats()) }, code, reason)
}

func (s *Server) closeMatching(match func(*client) bool, code int, reason string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.topics {
		for _, c := range t.clients {
			if match(c) {
				c.cancel(&closeCause{code: code, reason: reason})
				n++
			}
		}
	}
	return n
}

// closeToken is the deny hook: it closes the live connections the deny
// refuses (close 1008, "token revoked"). It runs in the goroutine that
// called Deny and returns at once.
func (s *Server) closeToken(d auth.Denial) {
	n := s.closeMatching(func(c *client) bool { return d.Refuses(c.grant.ID, c.grant.Path) }, websocket.ClosePolicyViolation, "token revoked")
	s.log.WithFields(logrus.Fields{"token": d.JTI, "path": d.Path, "clients": n}).Info("revoked token's connections closed")
}

// scanStep is how many bytes a topic takes in between two checks of its
// viewers' backlogs.
func (s *Server) scanStep() uint64 { return uint64(max(s.cfg.QueueBytes/8, 1)) }

// dropBehind disconnects t's viewers whose backlog is over QueueBytes. It
// ends their subscriptions at once, so that their queues stop growing, and
// empties the queues, so that a pump stuck in a write holds only its batch.
func (s *Server) dropBehind(t *topic) {
	pos := t.pos.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range t.clients {
		if c.sub == nil || c.ctx.Err() != nil {
			continue
		}
		select {
		case <-c.sub.Done(): // kicked by the hub, or on its way out
			continue
		default:
		}
		// Bytes published since it joined, less its own and what it has
		// written: what waits in its queue and its pump.
		backlog := int64(pos-c.subPos) - int64(c.own.Load()) - int64(c.bytesOut.Load())
		if backlog <= s.cfg.QueueBytes {
			continue
		}
		reason := "too slow: fell " + humanBytes(uint64(backlog)) + " behind"
		c.cancel(&closeCause{code: websocket.ClosePolicyViolation, reason: reason})
		c.sub.Close()
		if !c.sub.Kicked() && c.dropped.CompareAndSwap(false, true) {
			t.behind.Add(1)
			c.log.WithField("backlog", backlog).Info("viewer dropped: " + reason)
		}
		for q := c.sub.C(); len(q) > 0; {
			select {
			case <-q:
			default:
			}
		}
	}
}
