// Package cluster owns how several vw relays behave as one. Each relay
// embeds a NATS server (client port off, reached in-process) whose routes
// join the other relays' in a full mesh, authenticated by a shared secret
// and optionally TLS; or it connects to a NATS cluster the operator runs.
//
// What a local publisher or peer sends on a topic is published on that
// topic's subject; a relay subscribes to a topic's subject only while it
// has local viewers or peers (and Linger after), and NATS forwards a
// message over a route only to a server with a subscription, so a stream
// crosses only to the relays that watch it. What arrives is handed to the
// relay (crossbar) as a local publisher's message would be, so fan-out,
// per-viewer queues and the dropping of slow viewers stay local to each
// relay. Messages carry their origin, publisher and sequence number
// (wire.go); a receiver that sees a gap joins the stream again at the next
// keyframe (resync.go). Relays report their topics to each other once a
// second (peers.go), and share denies and redeem each other's access codes
// (auth.go).
//
// The relay declares what it needs of a cluster (crossbar.Cluster); this
// package provides it and calls the relay back through Local. No cluster
// configured means no Cluster at all: a single relay moves nothing through
// NATS and starts no server.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/defaults"
)

// Config is a relay's place in a cluster.
type Config struct {
	// Node names this relay; default the host name. Every relay of a
	// cluster needs its own.
	Node string
	// Listen is where the embedded server takes routes from other relays
	// (host:port; port 0 picks one). Default ":6222" when Routes are set.
	Listen string
	// Routes are other relays' route URLs (nats://host:port); one is
	// enough to join, the rest are learnt from it.
	Routes []string
	// Secret authenticates routes: every relay of a cluster has the same.
	// Mandatory with an embedded server (at least auth.MinSecretLen bytes).
	Secret []byte
	// TLSCert, TLSKey and TLSCA, when set, put routes (or the connection
	// to an external NATS) under TLS: this relay's certificate (used as
	// server and client) and the CA that every peer's must chain to.
	TLSCert, TLSKey, TLSCA string
	// NATS, when set, connects to these NATS servers (comma-separated
	// URLs) instead of embedding one; NATSCreds is a credentials file.
	NATS      string
	NATSCreds string
	// Linger is how long a relay keeps taking a topic from the others
	// after its last local viewer or peer left. Default 5 s.
	Linger time.Duration
	// Report is how often a relay reports its topics to the others; a
	// peer silent for three reports is down. Default 1 s.
	Report time.Duration
}

// Enabled reports whether cfg asks for a cluster at all.
func (cfg Config) Enabled() bool {
	return cfg.Listen != "" || len(cfg.Routes) > 0 || cfg.NATS != ""
}

// Defaults.
const (
	DefaultListen = ":6222"
	DefaultLinger = 5 * time.Second
	DefaultReport = time.Second
	// maxPayload is the largest message between relays; a relay's
	// MaxMessage should stay below it.
	maxPayload = 8 << 20
	// outQueue and outQueueBytes bound what waits to be published: a
	// cluster that cannot keep up drops, and receivers see the gap.
	outQueue      = 4096
	outQueueBytes = 32 << 20
	// Each topic subscription holds at most this much unread.
	subPendingMsgs  = 4096
	subPendingBytes = 64 << 20
)

// Local is what the cluster needs of its relay (*crossbar.Server).
type Local interface {
	Wants(topic string) bool
	LocalTopics() []crossbar.TopicCount
	Attach(topic string) *crossbar.Inlet
	NewID() uint64
}

// Cluster is one relay's membership: it implements crossbar.Cluster.
type Cluster struct {
	cfg      Config
	log      *logrus.Entry
	instance uint64 // random per run: tells this run's messages from a restarted relay's
	tag      string // nodeTag(cfg.Node)
	started  time.Time

	srv *server.Server // nil with an external NATS
	nc  *nats.Conn
	// The embedded server's client credentials, random per run.
	clientUser, clientPass string

	local  Local
	auth   *auth.Auth
	cancel context.CancelFunc
	wg     sync.WaitGroup

	out      chan outMsg
	outBytes atomic.Int64
	// interest, with an embedded server, counts the subscriptions to a
	// subject, this relay's own (in own) and other servers'.
	interest func(subject string) int
	own      sync.Map // subjects this relay subscribes to
	subjects sync.Map // topic -> subject, for Publish
	nsubj    atomic.Int64

	mu      sync.Mutex
	dirty   map[string]bool // topics whose local clients changed
	wake    chan struct{}
	watches map[string]*watch // owned by the interest loop; mu for Status
	peers   map[string]*peer
	warned  map[string]bool
	soon    chan struct{}
	closed  bool

	counters counters
	share    sharing
}

// counters are what the cluster counts, for /stats and tests.
type counters struct {
	sent, dropped, received, gaps, bad atomic.Uint64
	unwatched                          atomic.Uint64 // not sent: no relay watched
}

// New checks cfg and returns a cluster to Start.
func New(cfg Config, log *logrus.Entry) (*Cluster, error) {
	if !cfg.Enabled() {
		return nil, errors.New("cluster: no cluster configured (listen, routes or NATS)")
	}
	if cfg.Node == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("cluster: no node name and no host name: %w", err)
		}
		cfg.Node = h
	}
	if cfg.NATS == "" && cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.NATS != "" && (cfg.Listen != "" || len(cfg.Routes) > 0) {
		return nil, errors.New("cluster: connect to an external NATS or embed one with listen/routes, not both")
	}
	if cfg.NATS == "" {
		if len(cfg.Secret) == 0 {
			return nil, errors.New("cluster: a cluster secret is required (VW_RELAY_CLUSTER_SECRET_FILE): a route sees every stream")
		}
		if err := auth.CheckSecret(cfg.Secret); err != nil {
			return nil, fmt.Errorf("cluster secret: %w", err)
		}
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("cluster: TLS needs both a certificate and its key")
	}
	for _, r := range cfg.Routes {
		if err := checkRoute(r); err != nil {
			return nil, err
		}
	}
	if err := errors.Join(
		defaults.Positive("Linger", &cfg.Linger, DefaultLinger),
		defaults.Positive("Report", &cfg.Report, DefaultReport),
	); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	var b [40]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return &Cluster{
		clientUser: "vw-relay",
		clientPass: hex.EncodeToString(b[8:]),
		cfg:        cfg,
		log:        log.WithField("node", cfg.Node),
		instance:   binary.BigEndian.Uint64(b[:]),
		tag:        nodeTag(cfg.Node),
		out:        make(chan outMsg, outQueue),
		dirty:      make(map[string]bool),
		wake:       make(chan struct{}, 1),
		watches:    make(map[string]*watch),
		peers:      make(map[string]*peer),
		warned:     make(map[string]bool),
		soon:       make(chan struct{}, 1),
	}, nil
}

// checkRoute refuses a route URL the embedded server could not dial.
func checkRoute(r string) error {
	host, ok := strings.CutPrefix(r, "nats://")
	if !ok {
		return fmt.Errorf("cluster route %q: want nats://host:port", r)
	}
	if strings.ContainsAny(host, "@/?#") {
		return fmt.Errorf("cluster route %q: want nats://host:port, no credentials (the secret is added) or path", r)
	}
	if _, port, err := net.SplitHostPort(host); err != nil {
		return fmt.Errorf("cluster route %q: %w", r, err)
	} else if _, err := strconv.Atoi(port); err != nil {
		return fmt.Errorf("cluster route %q: port %q", r, port)
	}
	return nil
}

// Node is this relay's name.
func (c *Cluster) Node() string { return c.cfg.Node }

// Start runs the cluster for local: it starts the embedded server (or
// connects to the external NATS), and from then on takes local's topics to
// and from the other relays, and shares a's denies and codes (a may be an
// open Auth). It returns once connected.
func (c *Cluster) Start(local Local, a *auth.Auth) error {
	c.local, c.auth = local, a
	if c.cfg.NATS == "" {
		srv, err := c.startServer()
		if err != nil {
			return err
		}
		c.srv = srv
		c.interest = srv.GlobalAccount().Interest
	}
	nc, err := c.connect()
	if err != nil {
		c.shutdownServer()
		return err
	}
	c.nc = nc
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if err := c.startAuth(ctx); err != nil {
		cancel()
		nc.Close()
		c.shutdownServer()
		return err
	}
	if err := c.startReports(ctx); err != nil {
		cancel()
		nc.Close()
		c.shutdownServer()
		return err
	}
	c.run(ctx, c.publishLoop)
	c.run(ctx, c.interestLoop)
	c.waitJoined()
	return nil
}

// run starts f in a goroutine that Close waits for; none starts once
// Close has begun.
func (c *Cluster) run(ctx context.Context, f func(context.Context)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f(ctx)
	}()
}

// Close leaves the cluster: it stops taking and giving topics, closes the
// connection and stops the embedded server. Close the relay first.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	c.mu.Lock()
	watches := c.watches
	c.watches = make(map[string]*watch)
	c.mu.Unlock()
	// Outside c.mu: stopping takes the relay's lock, and the relay calls
	// Changed holding it.
	for _, w := range watches {
		w.stop()
	}
	c.stopAuth()
	if c.nc != nil {
		c.nc.Close()
	}
	c.shutdownServer()
	c.log.Info("left the cluster")
}

// Changed notes that topic's local clients changed; the interest loop
// looks at it soon.
func (c *Cluster) Changed(topic string) {
	c.mu.Lock()
	c.dirty[topic] = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// outMsg is a local message waiting to be published.
type outMsg struct {
	topic     string
	from, seq uint64
	m         *hub.Message
}

// Publish queues a local client's message for the other relays; a full
// queue drops it (counted), never waits. With an embedded server, a
// message no other relay watches goes no further: that costs the
// publisher's goroutine one look at the server's subscriptions, and saves
// the relay handing NATS what it would route nowhere.
func (c *Cluster) Publish(topic string, from, seq uint64, m *hub.Message) {
	if c.interest != nil && !c.watchedElsewhere(c.subject(topic)) {
		c.counters.unwatched.Add(1)
		return
	}
	n := int64(len(m.Data))
	if c.outBytes.Add(n) > outQueueBytes {
		c.outBytes.Add(-n)
		c.counters.dropped.Add(1)
		return
	}
	select {
	case c.out <- outMsg{topic: topic, from: from, seq: seq, m: m}:
	default:
		c.outBytes.Add(-n)
		c.counters.dropped.Add(1)
	}
}

// publishLoop publishes queued messages, each behind its header.
func (c *Cluster) publishLoop(ctx context.Context) {
	buf := make([]byte, headerLen, 64<<10)
	var lastErr time.Time
	for {
		var o outMsg
		select {
		case <-ctx.Done():
			return
		case o = <-c.out:
		}
		c.outBytes.Add(-int64(len(o.m.Data)))
		subj := c.subject(o.topic)
		h := header{instance: c.instance, publisher: o.from, seq: o.seq}
		if o.m.Text {
			h.flags |= flagText
		} else if alignedTS(o.m.Data) {
			h.flags |= flagAligned
		}
		buf = append(buf[:headerLen], o.m.Data...)
		h.put(buf[:headerLen])
		if err := c.nc.Publish(subj, buf); err != nil {
			c.counters.dropped.Add(1)
			if time.Since(lastErr) > time.Minute {
				lastErr = time.Now()
				c.log.WithFields(logrus.Fields{"stream": o.topic, "err": err}).Warn("cluster: publishing to the other relays failed")
			}
			continue
		}
		c.counters.sent.Add(1)
		if cap(buf) > 1<<20 {
			buf = make([]byte, headerLen, 64<<10) // one huge message does not stay held
		}
	}
}

// subject returns topic's subject, remembered for the next message.
func (c *Cluster) subject(topic string) string {
	if s, ok := c.subjects.Load(topic); ok {
		return s.(string)
	}
	s := topicSubject(topic)
	if c.nsubj.Add(1) > 10000 {
		c.subjects.Clear()
		c.nsubj.Store(1)
	}
	c.subjects.Store(topic, s)
	return s
}

// watchedElsewhere reports whether another server subscribes to subj.
func (c *Cluster) watchedElsewhere(subj string) bool {
	n := c.interest(subj)
	if _, mine := c.own.Load(subj); mine {
		n--
	}
	return n > 0
}
