package crossbar

import (
	"net/http"

	"github.com/gorilla/websocket"
)

// Handler returns every route of the relay. A websocket handshake on any
// path joins that path's topic:
//
//	/in/{x}    publish a stream to /out/{x}; receive nothing
//	/out/{x}   receive the stream; what is sent is dropped
//	any other  bidirectional: receive what every other client sends
//
// Plain GETs get pages:
//
//	/            live streams, with links to their players
//	/play/{x}    the player of /out/{x}
//	/stats       topics and clients: JSON, or HTML for a browser
//	/lib/...     the jsmpeg library
func (s *Server) Handler() http.Handler {
	pages := http.NewServeMux()
	pages.Handle("GET /stats", s.handleStats())
	pages.Handle("/", s.pages.Handler())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			s.serveWS(w, r)
			return
		}
		pages.ServeHTTP(w, r)
	})
}
