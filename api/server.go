// Package api owns the transports of vw stream: ffmpeg's ingest
// (POST /ts/{feed}), the local preview websocket, the REST routes for stream
// and destination rules, the websocket-JSON control API, and the guards in
// front of them (token, Host, Origin, strict JSON). The rules themselves
// live in package rules: REST and the control API both call that one
// service, so they can never disagree.
package api

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/defaults"
	"github.com/vwlab/vw/rules"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxBody    = 1 << 20
	DefaultIngestIdle = 30 * time.Second
)

// Config holds the knobs of the vw stream HTTP server. Zero fields take the
// defaults; negative ones are an error.
type Config struct {
	// MaxBody caps a rule's JSON body; default 1 MiB.
	MaxBody int64
	// IngestIdle ends an ingest whose ffmpeg has sent nothing for this
	// long, so a hung encoder does not hold the feed name; default 30 s.
	IngestIdle time.Duration
	// Token, if set, is required as "Authorization: Bearer <Token>" on every
	// route except /healthcheck.
	Token string
	// Player, if set, serves the preview player page at /play/{stream...}
	// and its library under /lib/; it is given the request unchanged.
	Player http.Handler
	// ListenHost is the address vw stream listens on (VW_HOST): a Host
	// header naming it is accepted, as are loopback names and addresses.
	ListenHost string
	// AllowedHosts are further names clients may use to reach vw stream
	// (VW_ALLOWED_HOSTS); a request for any other Host is refused.
	AllowedHosts []string
}

func (c Config) withDefaults() (Config, error) {
	err := errors.Join(
		defaults.Positive("MaxBody", &c.MaxBody, DefaultMaxBody),
		defaults.Positive("IngestIdle", &c.IngestIdle, DefaultIngestIdle),
	)
	return c, err
}

// Server is the HTTP server of vw stream.
type Server struct {
	cfg   Config
	hub   *hub.Hub
	rules *rules.Service
	log   *logrus.Entry
	// refusals logs refused requests and control commands, at most one
	// line a second per reason.
	refusals *rateLog

	mu       sync.Mutex
	feeds    map[string]*ingest       // the current ingest of each live feed
	counters map[string]*feedCounters // by feed, across its POSTs (feedcount.go)
	closing  bool
	wg       sync.WaitGroup // preview connections' loops
	done     chan struct{}  // closed by Close: ends previews
}

// New returns the server over the rules service rs; Handler gives its
// routes.
func New(cfg Config, h *hub.Hub, rs *rules.Service, log *logrus.Entry) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	return &Server{
		cfg:   cfg,
		hub:   h,
		rules: rs,
		log:   log,
		feeds: make(map[string]*ingest),

		counters: make(map[string]*feedCounters),

		refusals: newRateLog(log, time.Second),
		done:     make(chan struct{}),
	}, nil
}

// Close ends every ingest and preview connection, so that an
// http.Server.Shutdown that follows is not held up by bodies that last hours.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	for _, in := range s.feeds {
		in.stop()
	}
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
}
