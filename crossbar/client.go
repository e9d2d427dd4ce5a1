package crossbar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/wsframe"
	"github.com/vwlab/vw/ts"
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

// topic is the relay's view of a hub topic: its clients and what the hub
// does not count. It lives while it has clients.
type topic struct {
	name  string
	since time.Time
	ht    *hub.Topic // held joined while the topic lives
	psi   psiCache

	// guarded by Server.mu
	clients   map[uint64]*client
	rate      rateSample
	pubs      int       // publishers among clients
	subs      int       // viewers and peers among clients
	liveSince time.Time // when pubs last became 1

	timeouts atomic.Uint64 // viewers dropped for a passed write deadline
	behind   atomic.Uint64 // viewers dropped for a backlog over QueueBytes

	// pos counts the bytes relay readers have published to the topic,
	// added before each Publish, so that a viewer's backlog is pos less
	// where it started, what it wrote and what it sent itself.
	pos atomic.Uint64
}

// client is one websocket connection.
type client struct {
	s      *Server
	id     uint64
	role   Role
	topic  *topic
	remote string // client IP
	addr   string // client IP:port
	since  time.Time
	log    *logrus.Entry

	conn *websocket.Conn
	nc   *frameConn
	sub  *hub.Sub // viewers and peers; set under Server.mu

	path string // the websocket path it connected on

	// grant is what auth allowed: role, topic, and the token's id, path and
	// expiry (none when anonymous). Read only.
	grant *auth.Grant

	// ctx ends when the relay closes or CloseClients picks this client;
	// its cause, a *closeCause, says how to close.
	ctx    context.Context
	cancel context.CancelCauseFunc

	// subPos is the topic's pos when the viewer subscribed; set with sub,
	// under Server.mu.
	subPos uint64
	// own counts the bytes a peer has published, which it does not receive.
	own atomic.Uint64
	// dropped is set by whichever drop for slowness counts it (write
	// deadline or backlog bytes; the hub counts its own kicks).
	dropped atomic.Bool

	pong       chan []byte   // pongs owed, written by the pump
	flush      chan struct{} // a direct write left the rest of a frame to the pump
	stop       chan struct{} // closed when the reader has finished
	closeReply []byte        // the close frame that answers the peer's; set before stop closes

	// Read side (the handler goroutine only).
	sizeHint  int
	unaligned bool
	aligner   ts.Aligner
	scratch   []byte

	// Write side (the pump only).
	iov   [][]byte
	hdrs  []byte
	batch []*hub.Message

	msgsIn, bytesIn   atomic.Uint64
	msgsOut, bytesOut atomic.Uint64
	ignored           atomic.Uint64 // messages a viewer sent, dropped
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
	t, err := s.checkLimitsLocked(g, ip)
	if err != nil {
		return nil, err
	}
	if t == nil {
		t = &topic{name: g.Topic, since: time.Now(), ht: s.hub.Join(g.Topic), clients: make(map[uint64]*client)}
		s.topics[g.Topic] = t
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	c := &client{
		s:        s,
		path:     r.URL.Path,
		grant:    g,
		ctx:      ctx,
		cancel:   cancel,
		id:       s.hub.NewID(),
		role:     g.Role,
		topic:    t,
		remote:   ip,
		addr:     r.RemoteAddr,
		since:    time.Now(),
		pong:     make(chan []byte, 1),
		flush:    make(chan struct{}, 1),
		stop:     make(chan struct{}),
		sizeHint: 16 << 10,
	}
	c.log = s.log.WithFields(logrus.Fields{"id": c.id, "url": r.URL.Path, "role": string(c.role), "remote": c.addr})
	if g.ID != "" {
		c.log = c.log.WithField("token", g.ID)
	}
	s.joinLocked(c)
	s.wg.Add(1)
	return c, nil
}

// leave undoes admit.
func (s *Server) leave(c *client) {
	c.cancel(nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := c.topic
	s.partLocked(c)
	if c.role == Publisher && t.pubs == 0 {
		t.psi.reset()
		s.log.WithField("stream", t.name).Info("stream ended")
	}
	if len(t.clients) == 0 {
		s.ended.add(t)
		delete(s.topics, t.name)
		t.ht.Leave()
	}
	s.wg.Done()
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

	var first *hub.Message
	if c.role != Publisher {
		cfg := hub.SubConfig{ID: c.id, Queue: s.cfg.Queue, Policy: hub.Kick}
		if c.nc.raw != nil {
			cfg.Direct = c.direct
		}
		sub := s.hub.Subscribe(c.topic.name, cfg)
		defer sub.Close()
		// Read after subscribing: a message counted in pos from here on is
		// in the queue (pos grows before Publish), so a backlog is never
		// overstated.
		pos := c.topic.pos.Load()
		s.mu.Lock() // Stats and dropBehind read them
		c.sub, c.subPos = sub, pos
		s.mu.Unlock()
		if c.role == Viewer {
			first = c.topic.psi.message()
		}
	}

	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		c.writePump(first)
	}()
	err = c.readPump()
	close(c.stop)
	<-pumpDone
	_ = c.nc.Close()
	c.log.WithFields(logrus.Fields{"err": err, "msgsIn": c.msgsIn.Load(), "msgsOut": c.msgsOut.Load()}).Debug("disconnected")
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
		case <-c.pong:
		default:
		}
		select {
		case c.pong <- []byte(data):
		default:
		}
		return nil
	})
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(wait))
	})
	conn.SetCloseHandler(func(code int, text string) error {
		if code == websocket.CloseNoStatusReceived {
			c.closeReply = wsframe.AppendFrame(nil, wsframe.Close, nil, nil)
		} else {
			c.closeReply = closeFrame(code, "")
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
		if c.role == Publisher {
			c.observePSI(m.Data)
		}
		n := uint64(len(m.Data))
		if c.sub != nil {
			c.own.Add(n)
		}
		pos := c.topic.pos.Add(n)
		c.topic.ht.Publish(m)
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
	buf := make([]byte, room, room+c.sizeHint)
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
	c.sizeHint = max(n, 512)
	h := wsframe.HeaderLen(n, false)
	wsframe.PutHeader(buf[room-h:room], mt, n, nil)
	return &hub.Message{
		Data:   buf[room:],
		Header: buf[room-h : room],
		Text:   mt == websocket.TextMessage,
		From:   c.id,
	}, nil
}

// observePSI feeds a publisher's packets to the topic's PAT/PMT cache. A
// publisher that sends whole packets per message is scanned in place; one
// that does not goes through an Aligner from then on.
func (c *client) observePSI(data []byte) {
	if !c.unaligned && aligned(data) {
		c.topic.psi.observe(data)
		return
	}
	c.unaligned = true
	c.scratch = c.aligner.Append(c.scratch[:0], data)
	c.topic.psi.observe(c.scratch)
}

// aligned reports whether b is whole packets, each starting with the sync
// byte.
func aligned(b []byte) bool {
	if len(b)%ts.PacketSize != 0 {
		return false
	}
	for i := 0; i < len(b); i += ts.PacketSize {
		if b[i] != ts.SyncByte {
			return false
		}
	}
	return true
}

// maxBatch bounds the messages one writev carries, and maxBatchBytes its
// bytes (one message may be larger): a pump stuck in a write holds no more.
const (
	maxBatch      = 64
	maxBatchBytes = 256 << 10
)

// writePump owns writing: queued messages (a backlog in one writev), pongs,
// pings, and the close frame at the end. When it ends it closes the
// connection so that the reader ends too.
func (c *client) writePump(first *hub.Message) {
	defer func() { _ = c.nc.Close() }()
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	var queue <-chan *hub.Message
	var kicked <-chan struct{}
	if c.sub != nil {
		queue, kicked = c.sub.C(), c.sub.Done()
	}
	if first != nil {
		if err := c.write(first, false); err != nil {
			c.writeFailed(err)
			return
		}
	}
	if c.sub != nil {
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
			if err := c.write(m, true); err != nil {
				c.writeFailed(err)
				return
			}
		case <-c.flush:
			if _, err := c.nc.writeBuffers(nil, c.s.cfg.WriteTimeout); err != nil {
				c.writeFailed(err)
				return
			}
		case p := <-c.pong:
			if err := c.writeControl(websocket.PongMessage, p); err != nil {
				c.writeFailed(err)
				return
			}
		case <-ping.C:
			if c.grant.Expired(c.s.cfg.Now()) {
				c.log.Info("client closed by the relay: token expired")
				c.closeWith(websocket.ClosePolicyViolation, "token expired")
				return
			}
			if err := c.writeControl(websocket.PingMessage, nil); err != nil {
				c.writeFailed(err)
				return
			}
		case <-kicked:
			c.ended()
			return
		case <-c.stop:
			if c.closeReply != nil {
				_, _ = c.nc.writeBy(net.Buffers{c.closeReply}, time.Now().Add(time.Second))
			}
			return
		case <-c.ctx.Done():
			c.closeForCause()
			return
		}
	}
}

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

// write sends m and whatever else is queued behind it, in one syscall.
// fromQueue says whether m came from the queue.
func (c *client) write(m *hub.Message, fromQueue bool) error {
	batch := append(c.batch[:0], m)
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
	iov := c.iov[:0]
	hdrs := c.hdrs[:0]
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
	clear(batch)
	c.iov, c.hdrs, c.batch = iov[:0], hdrs[:0], batch[:0]
	if err != nil {
		return err
	}
	c.msgsOut.Add(uint64(len(batch)))
	c.bytesOut.Add(n)
	if c.sub != nil {
		// Written: the hub may hand the next message over directly. The
		// first message is from the queue unless it is the PSI sent first.
		k := len(batch)
		if !fromQueue {
			k--
		}
		c.sub.Consumed(k)
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
		case c.flush <- struct{}{}:
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
	case <-c.stop:
	case <-t.C:
	}
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
