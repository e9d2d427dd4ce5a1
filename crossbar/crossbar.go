// Package crossbar owns the relay server (vw relay): websocket routes where
// any path is a topic, one-way stream routes (/in/{x} publishes to
// /out/{x}), bidirectional N:N routes (every other path), the fan-out to
// viewers with a bounded queue each, the limits that keep one client from
// hurting the others, the stats page, and the player and index pages (from
// package jsmpeg).
//
// Access is decided by package auth before any upgrade: a token (a bearer
// header, or a one-time code from the access point) or a public prefix;
// auth's grant also says what the path means (the client's role and
// topic), so the relay never parses a path. The relay mounts auth's access
// point and deny route, and closes a revoked token's live connections.
//
// The files follow the jobs: topics.go and limits.go (the topic registry
// and admission), read.go (the read side), write.go (the write side and
// who may write to a connection), conn.go (the connection frames are
// written to), drop.go (every way the relay ends a client).
//
// Fan-out is built for many viewers of one stream: a publisher's message is
// framed once when it is read (header and payload in one buffer), and every
// viewer gets that same buffer. A viewer with nothing queued gets it from the
// publisher's goroutine in one non-blocking write (no goroutine wake-up, as
// cheap as the naive loop over viewers); any other gets it queued, and its
// write pump sends its whole backlog, starting with whatever a non-blocking
// write left unwritten, in one writev. A viewer that falls a queue's length
// behind, or whose write deadline passes, is disconnected with a close
// reason and counted; it never slows the publisher or another viewer.
//
// Every stream keeps a keyframe cache (cache.go): its PAT/PMT and the
// messages since its latest keyframe, which a viewer joining is sent first,
// so that its player has a picture at once instead of at the next keyframe.
package crossbar

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/defaults"
	"github.com/vwlab/vw/jsmpeg"
)

// Config holds the relay's access control and limits. Zero fields take the
// defaults below.
//
// Memory: a message is read into one buffer that every viewer's queue shares,
// so what a topic holds is its slowest viewer's backlog, bounded by Queue
// messages and by QueueBytes, whichever comes first (plus, per viewer, the
// batch its pump is writing: at most 256 KiB or one message), and its
// keyframe cache, bounded by CacheBytes (references to the same buffers,
// which viewers' backlogs may share). MaxMessage bounds one message;
// QueueBytes, not Queue × MaxMessage, bounds a backlog.
type Config struct {
	// Auth decides who may connect: a token (Authorization: Bearer, or a
	// one-time ?code= from the access point) or a public prefix; it serves
	// POST /access/{route} and POST /api/deny, and its deny hook closes a
	// revoked token's live connections. Nil runs the relay open, as an Auth
	// without a secret does: anyone may publish and watch.
	Auth *auth.Auth
	// Queue is each viewer's queue, in messages. A viewer this far behind is
	// disconnected (close 1008, "too slow"). Default 256 (at a 4 Mbit/s
	// stream sent in 16 KiB messages, about 8 s).
	Queue int
	// QueueBytes bounds each viewer's backlog in bytes: a viewer that falls
	// more than this behind the stream is disconnected (close 1008, "too
	// slow"), checked each time a topic has taken in another eighth of it.
	// Default 8 MiB (16 s of a 4 Mbit/s stream).
	QueueBytes int64
	// MaxMessage is the largest message a client may send, in bytes; a
	// larger one closes its connection with 1009 (message too big).
	// Default 1 MiB (vw stream sends at most about 64 KiB).
	MaxMessage int64
	// MaxViewers caps the viewers (and peers) of one topic; more are refused
	// at the handshake with 503. Default 1000.
	MaxViewers int
	// MaxConnsPerAddr caps the anonymous websocket connections (a public
	// route, or an open relay) from one client address; more are refused at
	// the handshake with 429. Connections with a token count against the
	// token instead, so a class behind one NAT can watch with its tokens.
	// Default 100.
	MaxConnsPerAddr int
	// MaxConnsPerToken caps the websocket connections of one token id;
	// more are refused at the handshake with 429. Default 1000.
	MaxConnsPerToken int
	// MaxConns caps the relay's websocket connections; more are refused at
	// the handshake with 503. Default 20,000.
	MaxConns int
	// MaxTopics caps the relay's topics: a connection that would open one
	// more is refused at the handshake with 503. Default 10,000.
	MaxTopics int
	// TrustedProxies are the reverse proxies in front of the relay (see
	// ParseProxies): for a request from one of them, the client address is
	// the rightmost address of X-Forwarded-For that is not one of them.
	// Empty trusts none: the address is the connection's own.
	TrustedProxies []netip.Prefix
	// WriteTimeout is how long one write to a client may take before the
	// client is dropped as stalled: between half of it and all of it.
	// Default 10 s.
	WriteTimeout time.Duration
	// PingInterval is how often the relay pings an idle client; a client
	// that sends nothing, not even a pong, for two intervals is dropped. A
	// connection whose token has expired (past auth.Leeway) is closed at the
	// next ping (close 1008, "token expired"). Default 20 s.
	PingInterval time.Duration
	// HandshakeTimeout bounds the websocket handshake and, in NewHTTPServer,
	// reading a request's headers and body: a connection that sends no
	// complete request within it is closed. Default 10 s.
	HandshakeTimeout time.Duration
	// MetricsTopics caps the topics /metrics reports one by one (those with
	// a publisher, oldest first); the rest are summed under topic="other".
	// Default 200.
	MetricsTopics int
	// CacheBytes bounds each stream's keyframe cache: the messages since
	// the start of its latest keyframe, which a viewer joining gets first so
	// that its player shows a picture at once. A GOP that outgrows it is
	// dropped and the cache holds only the PAT/PMT until the next keyframe.
	// The messages are the ones viewers' queues share, not copies. Default
	// DefaultCacheBytes (4 MiB); negative keeps only the PAT/PMT.
	CacheBytes int64
	// CacheTotalBytes bounds the keyframe caches of all streams together;
	// a stream whose GOP would take them past it keeps only its PAT/PMT
	// until its next keyframe. Default 64 × CacheBytes.
	CacheTotalBytes int64
	// MaxDelay bounds how far behind live a stream's viewer may fall on a
	// link slower than the stream: instead of queueing, such a viewer is
	// sent only what would still arrive in time, a picture if it would
	// start arriving within 0.4 of MaxDelay (else the rest of its GOP is
	// skipped, up to the newest keyframe), its sound as long as its link
	// can take it (see behind.go). Default DefaultMaxDelay (1 s); negative
	// never skips.
	MaxDelay time.Duration
	// Title names the relay on its pages. Default "vw relay".
	Title string
	// Cluster, when set, joins this relay to others (package cluster): what
	// local clients publish goes to the relays that watch it, and what is
	// published elsewhere reaches local viewers. Nil: a relay on its own.
	Cluster Cluster
	// Now is the clock that token expiry of live connections is checked
	// against, and that ages the index page's list of live streams; nil is
	// time.Now. Tests give the Auth's clock.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultQueue            = 256
	DefaultQueueBytes       = 8 << 20
	DefaultMaxMessage       = 1 << 20
	DefaultMaxViewers       = 1000
	DefaultMaxConnsPerAddr  = 100
	DefaultMaxConnsPerToken = 1000
	DefaultMaxConns         = 20000
	DefaultMaxTopics        = 10000
	DefaultWriteTimeout     = 10 * time.Second
	DefaultPingInterval     = 20 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMetricsTopics    = 200
)

func (c Config) withDefaults() (Config, error) {
	err := errors.Join(
		defaults.Positive("Queue", &c.Queue, DefaultQueue),
		defaults.Positive("QueueBytes", &c.QueueBytes, DefaultQueueBytes),
		defaults.Positive("MaxMessage", &c.MaxMessage, DefaultMaxMessage),
		defaults.Positive("MaxViewers", &c.MaxViewers, DefaultMaxViewers),
		defaults.Positive("MaxConnsPerAddr", &c.MaxConnsPerAddr, DefaultMaxConnsPerAddr),
		defaults.Positive("MaxConnsPerToken", &c.MaxConnsPerToken, DefaultMaxConnsPerToken),
		defaults.Positive("MaxConns", &c.MaxConns, DefaultMaxConns),
		defaults.Positive("MaxTopics", &c.MaxTopics, DefaultMaxTopics),
		defaults.Positive("MetricsTopics", &c.MetricsTopics, DefaultMetricsTopics),
		defaults.Positive("WriteTimeout", &c.WriteTimeout, DefaultWriteTimeout),
		defaults.Positive("PingInterval", &c.PingInterval, DefaultPingInterval),
		defaults.Positive("HandshakeTimeout", &c.HandshakeTimeout, DefaultHandshakeTimeout),
	)
	// CacheBytes, CacheTotalBytes and MaxDelay give a negative value a
	// meaning of its own (see their comments).
	defaults.Zero(&c.MaxDelay, DefaultMaxDelay)
	defaults.Zero(&c.Title, "vw relay")
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, err
}

// Server is the relay. It is ready to serve when New returns; Close ends it.
type Server struct {
	cfg       Config
	auth      *auth.Auth
	hub       *hub.Hub
	log       *logrus.Entry
	pages     *jsmpeg.Pages
	statsPage *template.Template
	upgrader  websocket.Upgrader
	started   time.Time
	caches    *cacheBudget // what the streams' keyframe caches hold together

	ctx        context.Context // cancelled by Close: every connection closes
	cancel     context.CancelFunc
	removeDeny func() // unregisters the deny hook

	// beforeAdmit, when set (by tests), runs between Authorize and admit:
	// the window a deny can slip through.
	beforeAdmit atomic.Pointer[func(*auth.Grant)]
	wg          sync.WaitGroup // connection handlers and the rate sampler
	index       indexCache
	refused     refusals // handshakes refused, by status (refusals.go)

	mu       sync.Mutex
	closed   bool
	topics   map[string]*topic
	live     map[string]*topic // the /out/ topics with a publisher
	conns    int               // websocket clients admitted
	perAddr  map[string]int    // anonymous clients per address
	perToken map[string]int    // clients per token id
	ended    endedTopics       // what closed topics counted, for /metrics' totals
}

// New returns a relay using h for fan-out. h should be the relay's own hub:
// topic names are websocket paths.
func New(cfg Config, h *hub.Hub, log *logrus.Entry) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("crossbar: %w", err)
	}
	a := cfg.Auth
	if a == nil {
		if a, err = auth.New(auth.Config{}, log); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		auth:     a,
		hub:      h,
		log:      log,
		started:  time.Now(),
		ctx:      ctx,
		cancel:   cancel,
		topics:   make(map[string]*topic),
		live:     make(map[string]*topic),
		perAddr:  make(map[string]int),
		perToken: make(map[string]int),
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		// Older jsmpeg builds ask for the "null" subprotocol; newer ones and
		// programs ask for none. Both are answered.
		Subprotocols: []string{"null"},
		// Players are served from anywhere (the relay is a public service
		// and holds no cookies to protect); access control is by token.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			httpError(w, status, reason.Error())
		},
	}
	s.caches = newCacheBudget(cfg.CacheBytes, cfg.CacheTotalBytes)
	h.KeepWith(s.caches.keepers(isStreamTopic))
	s.removeDeny = a.OnDeny(s.closeToken)
	s.statsPage = newStatsPage()
	s.pages = jsmpeg.New(jsmpeg.Config{
		Title:      cfg.Title,
		WSPath:     "/out/{stream}",
		AccessPath: auth.AccessPrefix,
		Streams:    s.liveStreams,
		Codec:      s.codecOf,
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sampleRates(ctx)
	}()
	if cfg.MaxDelay > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.watchBehind(ctx)
		}()
	}
	return s, nil
}

// NewHTTPServer returns an http.Server for the relay on addr with the
// relay's limits on plain HTTP: a connection must send a whole request,
// headers and body, within HandshakeTimeout (so one that connects and sends
// nothing is closed then); an answer must be written within
// pageWriteTimeout; an idle keep-alive connection is closed after three
// HandshakeTimeouts; headers are at most maxHeaderBytes (431 beyond). A
// websocket is not
// bound by these: the relay clears the deadlines when it takes the
// connection over and keeps its own (PingInterval, WriteTimeout). For TLS,
// set TLSConfig or call ServeTLS on it.
func (s *Server) NewHTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		ReadTimeout:       s.cfg.HandshakeTimeout,
		WriteTimeout:      pageWriteTimeout,
		IdleTimeout:       3 * s.cfg.HandshakeTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// Limits of plain HTTP requests, set by NewHTTPServer.
const (
	// pageWriteTimeout allows the library (about 125 KB) to reach a slow
	// phone.
	pageWriteTimeout = time.Minute
	// maxHeaderBytes is far above any honest request (a token is at most
	// 8 KiB) and far below net/http's default of 1 MiB.
	maxHeaderBytes = 64 << 10
)

// Close disconnects every websocket client with a close frame (1001, going
// away) and waits for their handlers to end. New connections are refused
// from then on. Close does not stop the HTTP server; shut that down too.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.removeDeny()
	s.cancel()
	s.wg.Wait()
	s.log.Info("relay closed")
}
