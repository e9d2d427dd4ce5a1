// Package crossbar owns the relay server (vw relay): websocket routes where
// any path is a topic, one-way stream routes (/in/{x} publishes to
// /out/{x}), bidirectional N:N routes (every other path), the fan-out to
// viewers with a bounded queue each, the limits that keep one client from
// hurting the others, the stats page, and the player and index pages (from
// package jsmpeg).
//
// Fan-out is built for many viewers of one stream: a publisher's message is
// framed once when it is read (header and payload in one buffer), every
// viewer's queue holds a pointer to that same buffer, and each viewer's write
// pump sends its whole backlog in one writev. A viewer that falls a queue's
// length behind, or whose write deadline passes, is disconnected with a close
// reason and counted; it never slows the publisher or another viewer.
package crossbar

import (
	"context"
	"html/template"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/jsmpeg"
)

// Config holds the relay's limits. Zero fields take the defaults below.
type Config struct {
	// Queue is each viewer's queue, in messages. A viewer this far behind is
	// disconnected. Default 256 (at a 4 Mbit/s stream sent in 16 KiB
	// messages, about 8 s).
	Queue int
	// MaxMessage is the largest message a client may send, in bytes; a
	// larger one closes its connection with 1009 (message too big).
	// Default 1 MiB.
	MaxMessage int64
	// MaxViewers caps the viewers (and peers) of one topic; more are refused
	// at the handshake with 503. Default 1000.
	MaxViewers int
	// MaxConnsPerAddr caps the websocket connections from one client IP;
	// more are refused at the handshake with 429. Default 100.
	MaxConnsPerAddr int
	// WriteTimeout is how long one write to a client may take before the
	// client is dropped as stalled: between half of it and all of it.
	// Default 10 s.
	WriteTimeout time.Duration
	// PingInterval is how often the relay pings an idle client; a client
	// that sends nothing, not even a pong, for two intervals is dropped.
	// Default 20 s.
	PingInterval time.Duration
	// HandshakeTimeout bounds the websocket handshake and, in NewHTTPServer,
	// reading request headers. Default 10 s.
	HandshakeTimeout time.Duration
	// Title names the relay on its pages. Default "vw relay".
	Title string
}

// Defaults of Config.
const (
	DefaultQueue            = 256
	DefaultMaxMessage       = 1 << 20
	DefaultMaxViewers       = 1000
	DefaultMaxConnsPerAddr  = 100
	DefaultWriteTimeout     = 10 * time.Second
	DefaultPingInterval     = 20 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
)

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Queue, DefaultQueue)
	def(&c.MaxViewers, DefaultMaxViewers)
	def(&c.MaxConnsPerAddr, DefaultMaxConnsPerAddr)
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	defD(&c.WriteTimeout, DefaultWriteTimeout)
	defD(&c.PingInterval, DefaultPingInterval)
	defD(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	if c.Title == "" {
		c.Title = "vw relay"
	}
	return c
}

// Server is the relay. It is ready to serve when New returns; Close ends it.
type Server struct {
	cfg       Config
	hub       *hub.Hub
	log       *logrus.Entry
	pages     *jsmpeg.Pages
	statsPage *template.Template
	upgrader  websocket.Upgrader
	started   time.Time

	ctx    context.Context // cancelled by Close: every connection closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // connection handlers and the rate sampler

	mu      sync.Mutex
	closed  bool
	topics  map[string]*topic
	perAddr map[string]int
}

// New returns a relay using h for fan-out. h should be the relay's own hub:
// topic names are websocket paths.
func New(cfg Config, h *hub.Hub, log *logrus.Entry) *Server {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		hub:     h,
		log:     log,
		started: time.Now(),
		ctx:     ctx,
		cancel:  cancel,
		topics:  make(map[string]*topic),
		perAddr: make(map[string]int),
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
	s.statsPage = newStatsPage()
	s.pages = jsmpeg.New(jsmpeg.Config{
		Title:   cfg.Title,
		WSPath:  "/out/{stream}",
		Streams: s.liveStreams,
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sampleRates(ctx)
	}()
	return s
}

// NewHTTPServer returns an http.Server for the relay on addr with the
// relay's header timeout, for callers that need nothing else.
func (s *Server) NewHTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		IdleTimeout:       2 * time.Minute,
	}
}

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
	s.cancel()
	s.wg.Wait()
	s.log.Info("relay closed")
}
