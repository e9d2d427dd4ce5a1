// Package api owns the transports of vw stream: ffmpeg's ingest
// (POST /ts/{feed}), the local preview websocket, the REST routes for stream
// and destination rules, the websocket-JSON control API, and the guards in
// front of them (token, Host, Origin, strict JSON). The rules themselves
// live in package rules: REST and the control API both call that one
// service, so they can never disagree.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/agg"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/defaults"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
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

	mu      sync.Mutex
	feeds   map[string]*ingest // the current ingest of each live feed
	closing bool
	wg      sync.WaitGroup // preview connections' pumps
	done    chan struct{}  // closed by Close: ends previews
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

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers err as {"error": "..."} with status, and logs it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	msg := oneLine(err.Error())
	s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path, "status": status, "err": msg}).Warn("request refused")
	writeJSON(w, status, map[string]string{"error": msg})
}

// refuse answers like fail, but logs through the rate limit: it is for
// refusals a web page could make vw stream send in a loop.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, err error) {
	msg := oneLine(err.Error())
	s.refusals.Warn("http "+strconv.Itoa(status), logrus.Fields{"method": r.Method, "path": r.URL.Path, "status": status, "err": msg}, "request refused")
	writeJSON(w, status, map[string]string{"error": msg})
}

// statusOf maps a rules error to its HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, rules.ErrBadRule), errors.Is(err, rules.ErrAPIRule), errors.Is(err, rules.ErrLimit), errors.Is(err, rwc.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, rules.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, agg.ErrCodecMix):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// decode reads one JSON object of type T from the body, strictly: size
// capped, field names exactly as documented, no key twice, no unknown
// field, no trailing data; so a typo is an error rather than a silently
// different rule.
func decode[T any](s *Server, w http.ResponseWriter, r *http.Request) (T, int, error) {
	var zero T
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return zero, http.StatusRequestEntityTooLarge, errors.New("body larger than " + sizeString(s.cfg.MaxBody))
		}
		return zero, http.StatusBadRequest, errors.New("reading body: " + err.Error())
	}
	v, err := unmarshalStrict[T](body)
	switch {
	case errors.Is(err, io.EOF):
		return zero, http.StatusBadRequest, errors.New("empty body: send a JSON object")
	case err != nil:
		return zero, http.StatusBadRequest, errors.New("bad JSON: " + err.Error())
	}
	return v, 0, nil
}

func sizeString(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
