package api

import "net/http"

func (s *Server) handleGetFeeds(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.rules.Feeds())
}
