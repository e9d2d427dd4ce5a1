package crossbar

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/hub"
)

// Role is what a client does on its route, as auth decided from its path.
type Role = auth.Role

// The roles, named here for the relay's stats.
const (
	// Publisher sends a stream on /in/{x}; it receives nothing.
	Publisher = auth.Publisher
	// Viewer receives a stream on /out/{x}; what it sends is dropped.
	Viewer = auth.Viewer
	// Peer is a client of a bidirectional route: it receives what every
	// other peer sends.
	Peer = auth.Peer
)

// client is one websocket connection, from admit to leave. Its goroutines
// are serveWS's: the handler reads (read.go) and the write pump writes
// (write.go); each keeps its own state below.
type client struct {
	s      *Server
	id     uint64
	role   Role
	topic  *topic
	grant  *auth.Grant // what auth allowed: role, topic, and the token's id, path and expiry (none when anonymous)
	path   string      // the websocket path it connected on
	remote string      // client IP
	addr   string      // client IP:port
	since  time.Time
	log    *logrus.Entry

	conn *websocket.Conn // gorilla's: the handshake and all reading
	nc   *frameConn      // every write goes through it
	sub  *hub.Sub        // viewers and peers; set under Server.mu
	// subPos is the topic's pos when the viewer subscribed; set with sub,
	// under Server.mu.
	subPos uint64

	// ctx ends when the relay ends the client (end says why) or closes.
	ctx    context.Context
	cancel context.CancelFunc
	end    atomic.Pointer[ending] // set once, by drop

	reader readSide  // the handler goroutine's
	writer writeSide // the write pump's
	counters
	shed viewerShed // a viewer's skipping on a slow link (behind.go)
}

// counters are a client's traffic, for the stats and for its backlog.
type counters struct {
	msgsIn, bytesIn   atomic.Uint64
	msgsOut, bytesOut atomic.Uint64
	ignored           atomic.Uint64 // messages a viewer sent, dropped
	own               atomic.Uint64 // bytes a peer published, which it does not receive
}

// serveWS runs one websocket connection from handshake to close. Every
// refusal (route, auth, limits) is an HTTP status with a JSON reason,
// before any upgrade. What the path means (role, topic) is auth's to say:
// the relay reads it from the grant.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	g, err := s.auth.Authorize(r)
	if err != nil {
		s.log.WithFields(logrus.Fields{"url": r.URL.Path, "remote": r.RemoteAddr, "err": err}).Info("connection refused")
		auth.WriteError(w, err)
		return
	}
	if hook := s.beforeAdmit.Load(); hook != nil {
		(*hook)(g)
	}
	c, err := s.admit(g, r)
	if err != nil {
		var ae *admitError
		errors.As(err, &ae)
		s.log.WithFields(logrus.Fields{"url": r.URL.Path, "remote": r.RemoteAddr, "err": err}).Info("connection refused")
		httpError(w, ae.status, ae.reason)
		return
	}
	// A deny that landed between Authorize and admit found no connection to
	// close; from admit on, the deny hook sees this one.
	if g.ID != "" && s.auth.Denied(g.ID, g.Path) {
		s.leave(c)
		c.log.Info("connection refused: token id denied")
		auth.WriteError(w, &auth.Error{Code: http.StatusUnauthorized, Reason: "token id denied"})
		return
	}
	defer s.leave(c)

	hw := &hijackWriter{ResponseWriter: w}
	conn, err := s.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		c.log.WithField("err", err).Debug("handshake failed")
		return
	}
	c.conn, c.nc = conn, hw.conn
	c.log.WithField("subprotocol", conn.Subprotocol()).Debug("connected")

	var replay []*hub.Message
	if c.role != Publisher {
		var sub *hub.Sub
		sub, replay = c.subscribe()
		defer sub.Close()
	}

	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		c.writePump(replay)
	}()
	err = c.readPump()
	close(c.reader.stop)
	<-pumpDone
	_ = c.nc.Close()
	c.log.WithFields(logrus.Fields{"err": err, "msgsIn": c.msgsIn.Load(), "msgsOut": c.msgsOut.Load()}).Debug("disconnected")
}

// subscribe joins a viewer or peer to its topic's messages: written to
// directly by the publisher where the socket allows, dropped at once by
// the hub if its queue fills.
func (c *client) subscribe() (*hub.Sub, []*hub.Message) {
	// A viewer of a stream starts with its PAT/PMT and latest GOP.
	cfg := hub.SubConfig{ID: c.id, Queue: c.s.cfg.Queue, Policy: hub.Kick, OnKick: c.kicked, Replay: c.role == Viewer}
	if c.nc.raw != nil {
		cfg.Direct = c.direct
	}
	sub := c.s.hub.Subscribe(c.topic.name, cfg)
	// Read after subscribing: a message counted in pos from here on is in
	// the queue (pos grows before Publish), so a backlog is never
	// overstated. The replay counts as published since it joined.
	pos := c.topic.pos.Load()
	replay := sub.Replay()
	for _, m := range replay {
		pos -= uint64(len(m.Data))
	}
	// Counted only now, and the cluster told only now: a viewer that /stats
	// or another relay counts is one a message published next reaches.
	c.s.mu.Lock() // Stats and dropBehind read them
	c.sub, c.subPos = sub, pos
	c.topic.subs++
	c.s.changed(c.topic)
	c.s.mu.Unlock()
	return sub, replay
}
