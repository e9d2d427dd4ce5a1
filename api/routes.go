package api

import (
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/gorilla/mux"
)

// Handler returns every route of vw stream, behind the guard (Host and
// Origin checks; see guard.go). The "all" routes are registered before the
// {stream}/{id} ones so that they win (the original tool routed DELETE
// /api/streams/all to the single-stream handler and deleted nothing).
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, errors.New("no such route: "+r.Method+" "+r.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusMethodNotAllowed, errors.New("method "+r.Method+" not allowed on "+r.URL.Path))
	})

	r.HandleFunc("/healthcheck", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, "ok")
	}).Methods(http.MethodGet, http.MethodHead)

	p := r.NewRoute().Subrouter()
	p.Use(s.requireToken)
	p.HandleFunc("/ts/{feed:.+}", s.handleIngest).Methods(http.MethodPost, http.MethodPut)
	p.HandleFunc("/ws/{stream:.+}", s.handlePreview).Methods(http.MethodGet)
	p.Handle("/metrics", s.handleMetrics()).Methods(http.MethodGet)
	p.Handle("/status", s.handleStatus()).Methods(http.MethodGet)
	p.Handle("/", s.handleStatusPage()).Methods(http.MethodGet, http.MethodHead)

	p.HandleFunc("/api/feeds", s.handleGetFeeds).Methods(http.MethodGet)
	p.Handle("/api/streams", s.requireJSON(http.HandlerFunc(s.handleSetStream))).Methods(http.MethodPost, http.MethodPut)
	p.HandleFunc("/api/streams/all", s.handleGetStreams).Methods(http.MethodGet)
	p.HandleFunc("/api/streams/all", s.handleDeleteStreams).Methods(http.MethodDelete)
	p.HandleFunc("/api/streams/{stream:.+}", s.handleGetStream).Methods(http.MethodGet)
	p.HandleFunc("/api/streams/{stream:.+}", s.handleDeleteStream).Methods(http.MethodDelete)

	p.Handle("/api/destinations", s.requireJSON(http.HandlerFunc(s.handleSetDestination))).Methods(http.MethodPost, http.MethodPut)
	p.HandleFunc("/api/destinations/all", s.handleGetDestinations).Methods(http.MethodGet)
	p.HandleFunc("/api/destinations/all", s.handleDeleteDestinations).Methods(http.MethodDelete)
	p.HandleFunc("/api/destinations/{id:.+}", s.handleGetDestination).Methods(http.MethodGet)
	p.HandleFunc("/api/destinations/{id:.+}", s.handleDeleteDestination).Methods(http.MethodDelete)

	if s.cfg.Player != nil {
		p.PathPrefix("/play/").Handler(s.cfg.Player).Methods(http.MethodGet, http.MethodHead)
		p.PathPrefix("/lib/").Handler(s.cfg.Player).Methods(http.MethodGet, http.MethodHead)
	}
	return s.guard(r)
}

// requireToken refuses a request without the configured bearer token. With
// no token configured vw stream listens on loopback only, and every local
// process may use it, as the original allowed.
func (s *Server) requireToken(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vw stream"`)
			s.fail(w, r, http.StatusUnauthorized, errors.New("missing or wrong API token: send Authorization: Bearer $VW_API_TOKEN"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
