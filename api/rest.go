package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

func (s *Server) handleSetStream(w http.ResponseWriter, r *http.Request) {
	rule, status, err := decode[rules.StreamRule](s, w, r)
	if err != nil {
		s.fail(w, r, status, err)
		return
	}
	stored, err := s.rules.SetStream(r.Context(), rule)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, stored)
}

func (s *Server) handleGetStreams(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.rules.Streams())
}

func (s *Server) handleGetStream(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["stream"]
	feeds, ok := s.rules.Stream(name)
	if !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no stream %q", name))
		return
	}
	writeJSON(w, http.StatusOK, feeds)
}

func (s *Server) handleDeleteStream(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["stream"]
	if err := s.rules.DeleteStream(name); err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, strings.TrimPrefix(name, "/"))
}

func (s *Server) handleDeleteStreams(w http.ResponseWriter, r *http.Request) {
	s.rules.DeleteStreams()
	writeJSON(w, http.StatusOK, "deleteAll")
}

func (s *Server) handleSetDestination(w http.ResponseWriter, r *http.Request) {
	rule, status, err := decode[rwc.Rule](s, w, r)
	if err != nil {
		s.fail(w, r, status, err)
		return
	}
	stored, err := s.rules.SetDestination(rule, false)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, stored)
}

func (s *Server) handleGetDestinations(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.rules.Destinations())
}

func (s *Server) handleGetDestination(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	rule, ok := s.rules.Destination(id)
	if !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no destination %q", id))
		return
	}
	writeJSON(w, http.StatusOK, rule)
}

func (s *Server) handleDeleteDestination(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	if err := s.rules.DeleteDestination(id, false); err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, id)
}

func (s *Server) handleDeleteDestinations(w http.ResponseWriter, r *http.Request) {
	s.rules.DeleteDestinations()
	writeJSON(w, http.StatusOK, "deleteAll")
}
