package crossbar

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/vwlab/vw/auth"
)

// What one client may take at the handshake, and the relay as a whole:
// connections per token id (a token's holders may share one NAT address),
// anonymous connections per address, connections and topics in all, and
// clients per topic. Each is a count kept as clients join and part, so that
// no check walks the clients, and so that the index page can list the live
// streams from the counts alone.

// checkLimitsLocked refuses a client that one of the limits has no room
// for, and returns the topic it joins (nil: a new one). Server.mu is held.
func (s *Server) checkLimitsLocked(g *auth.Grant, ip string) (*topic, error) {
	if s.conns >= s.cfg.MaxConns {
		return nil, &admitError{http.StatusServiceUnavailable,
			fmt.Sprintf("the relay is full: %d connections, the most it takes", s.conns)}
	}
	if g.ID != "" {
		if n := s.perToken[g.ID]; n >= s.cfg.MaxConnsPerToken {
			return nil, &admitError{http.StatusTooManyRequests,
				fmt.Sprintf("too many connections with this token: %d is the most allowed", s.cfg.MaxConnsPerToken)}
		}
	} else if s.perAddr[ip] >= s.cfg.MaxConnsPerAddr {
		return nil, &admitError{http.StatusTooManyRequests,
			fmt.Sprintf("too many connections from %s without a token: %d is the most allowed", ip, s.cfg.MaxConnsPerAddr)}
	}
	t := s.topics[g.Topic]
	if t == nil && len(s.topics) >= s.cfg.MaxTopics {
		return nil, &admitError{http.StatusServiceUnavailable,
			fmt.Sprintf("the relay is full: %d topics, the most it takes", len(s.topics))}
	}
	if t != nil && g.Role != Publisher && t.seats >= s.cfg.MaxViewers {
		return nil, &admitError{http.StatusServiceUnavailable,
			fmt.Sprintf("%s has %d viewers, the most allowed", g.Topic, t.seats)}
	}
	return t, nil
}

// joinLocked adds c to its topic and to every count. Server.mu is held.
func (s *Server) joinLocked(c *client) {
	t := c.topic
	t.clients[c.id] = c
	s.conns++
	if c.grant.ID != "" {
		s.perToken[c.grant.ID]++
	} else {
		s.perAddr[c.remote]++
	}
	if c.role != Publisher {
		t.seats++
		return
	}
	if t.pubs++; t.pubs == 1 {
		t.liveSince = c.since
		if strings.HasPrefix(t.name, "/out/") {
			s.live[t.name] = t
		}
		s.log.WithField("stream", t.name).Info("stream live")
	}
}

// partLocked undoes joinLocked. Server.mu is held.
func (s *Server) partLocked(c *client) {
	t := c.topic
	delete(t.clients, c.id)
	s.conns--
	if c.grant.ID != "" {
		if s.perToken[c.grant.ID]--; s.perToken[c.grant.ID] <= 0 {
			delete(s.perToken, c.grant.ID)
		}
	} else if s.perAddr[c.remote]--; s.perAddr[c.remote] <= 0 {
		delete(s.perAddr, c.remote)
	}
	if c.role != Publisher {
		t.seats--
		if c.sub != nil {
			t.subs--
		}
		return
	}
	if t.pubs--; t.pubs == 0 {
		delete(s.live, t.name)
	}
}
