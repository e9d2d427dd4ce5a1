package crossbar

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/hub"
)

// The topic registry: which topics the relay has and who is on each. admit
// puts a client on the topic its grant names, within the limits (limits.go),
// and leave takes it off; a topic lives while it has clients. Both hold
// Server.mu, as does everything that walks the registry (stats, the index,
// metrics, drops by admin, deny or backlog).

// topic is the relay's view of a hub topic: its clients and what the hub
// does not count. It lives while it has clients (or an Inlet holds it).
type topic struct {
	name  string
	since time.Time
	ht    *hub.Topic     // held joined while the topic lives
	cache *keyframeCache // ht's Keeper: PAT/PMT and the latest GOP; nil but for streams
	psi   *psiCache      // the cache's PAT/PMT; nil but for streams

	// guarded by Server.mu
	clients   map[uint64]*client
	rate      rateSample
	pubs      int       // publishers among clients
	seats     int       // viewers and peers among clients: what MaxViewers caps
	subs      int       // those of them the hub has subscribed: who is receiving
	liveSince time.Time // when pubs last became 1
	held      int       // Inlets holding the topic open for other relays' messages

	// drops counts the clients the relay ended, by reason (drop.go).
	drops [numDropReasons]atomic.Uint64

	// pos counts the bytes relay readers have published to the topic,
	// added before each Publish, so that a viewer's backlog is pos less
	// where it started, what it wrote and what it sent itself.
	pos atomic.Uint64

	shed topicShed // what its viewers skipped on slow links (behind.go)
}

// clientIP returns the host part of r.RemoteAddr.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// admitError is a refusal at the handshake.
type admitError struct {
	status int
	reason string
}

func (e *admitError) Error() string { return e.reason }

// admit checks the limits and registers a client on the topic g names in
// the role g gives, creating the topic if needed. On success the caller
// must call leave.
func (s *Server) admit(g *auth.Grant, r *http.Request) (*client, error) {
	ip := clientIP(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, &admitError{http.StatusServiceUnavailable, "the relay is shutting down"}
	}
	if _, err := s.checkLimitsLocked(g, ip); err != nil {
		return nil, err
	}
	t := s.topicLocked(g.Topic)
	ctx, cancel := context.WithCancel(s.ctx)
	c := &client{
		s:      s,
		id:     s.hub.NewID(),
		role:   g.Role,
		topic:  t,
		grant:  g,
		path:   r.URL.Path,
		remote: ip,
		addr:   r.RemoteAddr,
		since:  time.Now(),
		ctx:    ctx,
		cancel: cancel,
		reader: readSide{sizeHint: 16 << 10, stop: make(chan struct{})},
		writer: writeSide{pong: make(chan []byte, 1), flush: make(chan struct{}, 1)},
	}
	c.log = s.log.WithFields(logrus.Fields{"id": c.id, "url": r.URL.Path, "role": string(c.role), "remote": c.addr})
	if g.ID != "" {
		c.log = c.log.WithField("token", g.ID)
	}
	s.joinLocked(c)
	if c.role == Publisher {
		s.changed(t) // a viewer or peer counts once subscribed (client.subscribe)
	}
	s.wg.Add(1)
	return c, nil
}

// topicLocked returns the named topic, created if need be; Server.mu is
// held.
func (s *Server) topicLocked(name string) *topic {
	t := s.topics[name]
	if t == nil {
		t = &topic{name: name, since: time.Now(), ht: s.hub.Join(name), clients: make(map[uint64]*client)}
		if t.cache, _ = t.ht.Keeper().(*keyframeCache); t.cache != nil {
			t.psi = &t.cache.psi
		}
		s.topics[name] = t
	}
	return t
}

// dropIdleLocked removes t once nothing holds it: no client, and no Inlet
// taking other relays' messages into it. Server.mu is held.
func (s *Server) dropIdleLocked(t *topic) {
	if len(t.clients) == 0 && t.held == 0 && s.topics[t.name] == t {
		s.ended.add(t)
		delete(s.topics, t.name)
		t.ht.Leave()
	}
}

// leave undoes admit.
func (s *Server) leave(c *client) {
	c.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := c.topic
	s.partLocked(c)
	if c.role == Publisher && t.pubs == 0 {
		if t.cache != nil {
			t.cache.reset()
		}
		s.log.WithField("stream", t.name).Info("stream ended")
	}
	s.changed(t)
	s.dropIdleLocked(t)
	s.wg.Done()
}
