package crossbar

import (
	"strconv"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/auth"
)

// Eviction. Every way the relay ends a client is one dropReason and goes
// one way. Whichever goroutine sees the reason first calls drop: the
// publisher's for a full queue (the hub's OnKick) or a backlog
// (dropBehind), the deny hook's, CloseClients' caller's, or the pump's own
// for a write deadline, an expired token or the relay closing. drop
// records the reason once, counts it on the topic and wakes the pump; the
// pump then finishes: it logs the drop and sends the close frame the reason
// calls for. A later reason for the same client changes nothing, so
// nothing counts twice. A client that leaves by itself (it closes, or its
// connection fails) is not dropped.

// dropReason is why the relay ended a client.
type dropReason uint8

const (
	dropQueueFull     dropReason = iota // its queue filled: the hub kicked it
	dropBacklog                         // its backlog passed Config.QueueBytes
	dropWriteDeadline                   // a write to it passed Config.WriteTimeout
	dropExpired                         // its token expired
	dropRevoked                         // its token was denied
	dropAdmin                           // CloseClients picked it
	dropShutdown                        // the relay closed
	numDropReasons
)

// dropNames are the reasons as /stats and /metrics name them.
var dropNames = [numDropReasons]string{
	"queue_full", "backlog_bytes", "write_timeout", "token_expired", "token_revoked", "admin", "shutdown",
}

func (r dropReason) String() string { return dropNames[r] }

// slow reports whether r is falling behind, as DroppedViewers counts.
func (r dropReason) slow() bool { return r <= dropWriteDeadline }

// ending is how the relay ends one client: why, and the close frame it
// sends, with code 0 for none (the socket is stuck).
type ending struct {
	why  dropReason
	code int
	text string
}

// endFor picks the close for why, for every reason but dropAdmin, whose
// close is CloseClients' caller's; backlog is how far behind a viewer fell,
// for dropBacklog.
func (c *client) endFor(why dropReason, backlog int64) ending {
	switch why {
	case dropQueueFull:
		return ending{why, websocket.ClosePolicyViolation, "too slow: fell " + strconv.Itoa(c.s.cfg.Queue) + " messages behind"}
	case dropBacklog:
		return ending{why, websocket.ClosePolicyViolation, "too slow: fell " + humanBytes(uint64(backlog)) + " behind"}
	case dropWriteDeadline:
		return ending{why, 0, "write timed out"}
	case dropExpired:
		return ending{why, websocket.ClosePolicyViolation, "token expired"}
	case dropRevoked:
		return ending{why, websocket.ClosePolicyViolation, "token revoked"}
	default:
		return ending{dropShutdown, websocket.CloseGoingAway, "relay shutting down"}
	}
}

// drop ends c as e says unless it is already ending, and reports whether
// it did. It may be called from any goroutine and never blocks: the pump
// does the rest (finish).
func (c *client) drop(e ending) bool {
	if !c.end.CompareAndSwap(nil, &e) {
		return false
	}
	c.topic.drops[e.why].Add(1)
	c.cancel()
	return true
}

// dropCounts returns how many viewers t dropped for being slow, and its
// drops by reason name, nil if none.
func (t *topic) dropCounts() (slow uint64, byName map[string]uint64) {
	for r := range numDropReasons {
		n := t.drops[r].Load()
		if n == 0 {
			continue
		}
		if byName == nil {
			byName = make(map[string]uint64)
		}
		byName[r.String()] = n
		if r.slow() {
			slow += n
		}
	}
	return slow, byName
}

// kicked is the viewer's hub.SubConfig.OnKick.
func (c *client) kicked() { c.drop(c.endFor(dropQueueFull, 0)) }

// ended finishes the pump of a client whose subscription or context ended:
// for the reason dropped with, or, if none was yet, the hub's kick or the
// relay closing.
func (c *client) ended() {
	if c.end.Load() == nil {
		why := dropShutdown
		if c.sub != nil && c.sub.Kicked() {
			why = dropQueueFull
		}
		c.drop(c.endFor(why, 0))
	}
	c.finish(true)
}

// writeFailed ends the pump after a failed write. A passed deadline drops
// a viewer (for a full queue if the hub kicked it meanwhile); the socket is
// stuck, so no close frame is tried.
func (c *client) writeFailed(err error) {
	if isTimeout(err) && c.sub != nil {
		c.sub.Close() // its queue stops growing
		why := dropWriteDeadline
		if c.sub.Kicked() {
			why = dropQueueFull
		}
		c.drop(c.endFor(why, 0))
	}
	if c.end.Load() == nil {
		c.log.WithField("err", err).Debug("write failed")
		return
	}
	c.finish(false)
}

// finish is the pump's end of a drop: it logs it once and, if frame is set
// and the reason has one, sends the close frame.
func (c *client) finish(frame bool) {
	e := c.end.Load()
	log := c.log.WithField("reason", e.why.String())
	switch {
	case e.why == dropShutdown:
		log.Debug("client closed by the relay: " + e.text)
	case e.why.slow():
		log.Info("viewer dropped: " + e.text)
	default:
		log.Info("client closed by the relay: " + e.text)
	}
	if frame && e.code != 0 {
		c.closeWith(e.code, e.text)
	}
}

// CloseClients closes every connected client that match picks, each with a
// close frame carrying code and reason (cut to fit), and returns how many it
// picked. It returns at once; the clients close within a moment.
func (s *Server) CloseClients(match func(ClientStats) bool, code int, reason string) int {
	return s.dropMatching(func(c *client) bool { return match(c.stats()) }, func(*client) ending {
		return ending{dropAdmin, code, reason}
	})
}

// dropMatching drops every client match picks, as end says, and returns how
// many it picked.
func (s *Server) dropMatching(match func(*client) bool, end func(*client) ending) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.topics {
		for _, c := range t.clients {
			if match(c) {
				c.drop(end(c))
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
	n := s.dropMatching(func(c *client) bool { return d.Refuses(c.grant.ID, c.grant.Path) }, func(c *client) ending {
		return c.endFor(dropRevoked, 0)
	})
	s.log.WithFields(logrus.Fields{"token": d.JTI, "path": d.Path, "clients": n}).Info("revoked token's connections closed")
}

// scanStep is how many bytes a topic takes in between two checks of its
// viewers' backlogs.
func (s *Server) scanStep() uint64 { return uint64(max(s.cfg.QueueBytes/8, 1)) }

// dropBehind drops t's viewers whose backlog is over QueueBytes. It ends
// their subscriptions at once, so that their queues stop growing, and
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
		// written or skipped: what waits in its queue and its pump.
		backlog := int64(pos-c.subPos) - int64(c.own.Load()) - int64(c.bytesOut.Load()) - c.shed.settled.Load()
		if backlog <= s.cfg.QueueBytes {
			continue
		}
		c.drop(c.endFor(dropBacklog, backlog))
		c.sub.Close()
		for q := c.sub.C(); len(q) > 0; {
			select {
			case <-q:
			default:
			}
		}
	}
}
