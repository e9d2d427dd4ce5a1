package crossbar

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/auth"
)

// Handler returns every route of the relay. A websocket handshake on any
// path joins that path's topic, once auth allows it:
//
//	/in/{x}    publish a stream to /out/{x} (scope write); receive nothing
//	/out/{x}   receive the stream (scope read, or a public prefix); what is
//	           sent is dropped
//	any other  bidirectional (scopes read and write): receive what every
//	           other client sends
//
// Plain requests:
//
//	GET  /               live streams anyone may watch, with links to their players
//	GET  /play/{x}       the player of /out/{x} (a private one: /play/{x}#token=…)
//	GET  /lib/...        the jsmpeg library
//	GET  /healthcheck    "ok"
//	GET  /stats          topics and clients: JSON, or HTML for a browser;
//	                     with auth on, only for a token with scope admin
//	POST /access/{route} a bearer token for a one-time code: {"uri":"ws://…?code=…"}
//	POST /api/deny       revoke a token id (scope admin)
func (s *Server) Handler() http.Handler {
	pages := http.NewServeMux()
	pages.Handle("GET /stats", s.adminOnly(s.handleStats()))
	pages.Handle("GET /healthcheck", http.HandlerFunc(handleHealthcheck))
	pages.Handle(auth.AccessPrefix+"/", s.auth.AccessHandler())
	pages.Handle(auth.DenyPath, s.auth.DenyHandler())
	pages.Handle("/", s.pages.Handler())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			s.serveWS(w, r)
			return
		}
		pages.ServeHTTP(w, r)
	})
}

func handleHealthcheck(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode("ok")
}

// adminOnly lets through, when auth is on, only requests with a bearer token
// carrying scope admin: /stats names every topic, private ones too, and the
// address and token id of every client.
func (s *Server) adminOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.auth.Open() {
			if err := s.checkAdmin(r); err != nil {
				auth.WriteError(w, err)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) checkAdmin(r *http.Request) error {
	const need = "a token with scope admin"
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return &auth.Error{Code: http.StatusUnauthorized, Reason: r.URL.Path + " needs " + need + ": send Authorization: Bearer <token>"}
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h[0]), " ")
	if len(h) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") {
		return &auth.Error{Code: http.StatusUnauthorized, Reason: "Authorization must be one header: Bearer <token>"}
	}
	g, err := s.auth.Verify(strings.TrimSpace(tok))
	if err != nil {
		return err
	}
	if !g.Has(auth.ScopeAdmin) {
		return &auth.Error{Code: http.StatusForbidden, Reason: r.URL.Path + " needs " + need}
	}
	return nil
}
