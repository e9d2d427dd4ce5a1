package crossbar

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

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
// Behind reverse proxies (Config.TrustedProxies) every route sees the
// client's address from X-Forwarded-For. Plain requests:
//
//	GET  /               live streams anyone may watch, with links to their players
//	GET  /play/{x}       the player of /out/{x} (a private one: /play/{x}#token=…)
//	GET  /lib/...        the jsmpeg library
//	GET  /healthcheck    "ok"
//	GET  /stats          topics and clients: JSON, or HTML for a browser;
//	                     with auth on, only for a token with scope admin,
//	                     and only the topics under its path
//	GET  /metrics        Prometheus metrics (metrics.go); admin only, as /stats
//	POST /access/{route} a bearer token for a one-time code: {"uri":"ws://…?code=…"}
//	POST /api/deny       revoke a token id (scope admin, under its path)
func (s *Server) Handler() http.Handler {
	pages := http.NewServeMux()
	pages.Handle("GET /stats", s.adminOnly(s.handleStats))
	pages.Handle("GET /metrics", s.adminOnly(s.handleMetrics))
	pages.Handle("GET /healthcheck", http.HandlerFunc(handleHealthcheck))
	pages.Handle(auth.DenyPath, s.auth.DenyHandler())
	pages.Handle("/", s.pages.Handler())
	access := s.auth.AccessHandler()
	return s.withClientAddr(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case websocket.IsWebSocketUpgrade(r):
			s.serveWS(&refusalWriter{ResponseWriter: w, rf: &s.refused}, r)
		case strings.HasPrefix(r.URL.Path, auth.AccessPrefix+"/"):
			// Past the mux, which would redirect an unclean route to its
			// clean form: what a route means is auth's to say, as it is for
			// the handshake, so an unclean one is a 400 there too.
			access.ServeHTTP(w, r)
		default:
			pages.ServeHTTP(w, r)
		}
	}))
}

func handleHealthcheck(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode("ok")
}

// adminOnly serves h to requests with a bearer token carrying scope admin
// (to everyone when the relay runs open), with its grant: h must show only
// the topics the grant Sees, since a lab's admin token is for its lab. Any
// admin view of the relay (/stats, /metrics) goes through it.
func (s *Server) adminOnly(h func(http.ResponseWriter, *http.Request, *auth.Grant)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, err := s.auth.Admin(r)
		if err != nil {
			s.log.WithFields(logrus.Fields{"url": r.URL.Path, "remote": r.RemoteAddr, "err": err}).Debug("admin request refused")
			auth.WriteError(w, err)
			return
		}
		h(w, r, g)
	})
}
