package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

// The REST routes of both rule types go through three helpers: set, get
// one, delete one. Each answers what the rules service says, in JSON.

// setRule decodes a rule of type T from the body, has set store it, and
// answers the rule as stored.
func setRule[T, V any](s *Server, w http.ResponseWriter, r *http.Request, set func(T) (V, error)) {
	rule, status, err := decode[T](s, w, r)
	if err != nil {
		s.fail(w, r, status, err)
		return
	}
	stored, err := set(rule)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, stored)
}

// getRule answers the rule get finds under the route variable key, or 404
// saying there is no such what.
func getRule[V any](s *Server, w http.ResponseWriter, r *http.Request, key, what string, get func(string) (V, bool)) {
	name := mux.Vars(r)[key]
	v, ok := get(name)
	if !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no %s %q", what, name))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// deleteRule deletes the rule under the route variable key and answers the
// name del says it had.
func deleteRule(s *Server, w http.ResponseWriter, r *http.Request, key string, del func(string) (string, error)) {
	name, err := del(mux.Vars(r)[key])
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, name)
}

func (s *Server) handleSetStream(w http.ResponseWriter, r *http.Request) {
	setRule(s, w, r, func(rule rules.StreamRule) (rules.StreamRule, error) {
		return s.rules.SetStream(r.Context(), rule)
	})
}

func (s *Server) handleGetStreams(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.rules.Streams())
}

func (s *Server) handleGetStream(w http.ResponseWriter, r *http.Request) {
	getRule(s, w, r, "stream", "stream", s.rules.Stream)
}

func (s *Server) handleDeleteStream(w http.ResponseWriter, r *http.Request) {
	deleteRule(s, w, r, "stream", func(name string) (string, error) {
		return strings.TrimPrefix(name, "/"), s.rules.DeleteStream(name)
	})
}

func (s *Server) handleDeleteStreams(w http.ResponseWriter, r *http.Request) {
	s.rules.DeleteStreams()
	writeJSON(w, http.StatusOK, "deleteAll")
}

func (s *Server) handleSetDestination(w http.ResponseWriter, r *http.Request) {
	setRule(s, w, r, func(rule rwc.Rule) (rules.DestinationView, error) {
		return s.rules.SetDestination(rule, false)
	})
}

func (s *Server) handleGetDestinations(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.rules.Destinations())
}

func (s *Server) handleGetDestination(w http.ResponseWriter, r *http.Request) {
	getRule(s, w, r, "id", "destination", s.rules.Destination)
}

func (s *Server) handleDeleteDestination(w http.ResponseWriter, r *http.Request) {
	deleteRule(s, w, r, "id", func(id string) (string, error) {
		return id, s.rules.DeleteDestination(id, false)
	})
}

func (s *Server) handleDeleteDestinations(w http.ResponseWriter, r *http.Request) {
	s.rules.DeleteDestinations()
	writeJSON(w, http.StatusOK, "deleteAll")
}
