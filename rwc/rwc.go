// Package rwc owns destination rules: for each rule one reconnecting
// websocket client pushes one stream's topic to a remote URL, optionally
// recording the same bytes to a file, and publishes what the remote sends
// back into the topic. Updating a rule swaps make-before-break.
package rwc

import (
	"errors"
	"maps"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
)

// Rule is one destination rule. Field order is the wire order.
type Rule struct {
	Stream      string `json:"stream"`
	Destination string `json:"destination"`
	ID          string `json:"id"`
	Token       string `json:"token,omitempty"`
	File        string `json:"file,omitempty"`
}

// ErrInvalid wraps every error that is the rule's fault (a bad URL, a file
// outside the recordings folder); the API answers those with 400.
var ErrInvalid = errors.New("invalid destination rule")

// Config holds what every destination shares.
type Config struct {
	// Recordings is the folder that Rule.File names are relative to.
	Recordings string
	// Resolve maps a rule's stream name to the hub topic to push: the
	// stream rule's topic if one exists, otherwise the feed's.
	Resolve func(stream string) string
}

// RWC holds the destination rules and their clients.
type RWC struct {
	cfg Config
	h   *hub.Hub
	log *logrus.Entry

	mu    sync.Mutex
	rules map[string]Rule
}

// New returns an RWC with no rules.
func New(cfg Config, h *hub.Hub, log *logrus.Entry) *RWC {
	return &RWC{cfg: cfg, h: h, log: log, rules: make(map[string]Rule)}
}

// Set validates rule and creates or replaces the destination with its ID.
func (r *RWC) Set(rule Rule) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules[rule.ID] = rule
	return nil
}

// Get returns the rule with id, and whether it exists.
func (r *RWC) Get(id string) (Rule, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rule, ok := r.rules[id]
	return rule, ok
}

// All returns a copy of every rule, by ID.
func (r *RWC) All() map[string]Rule {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.rules)
}

// Delete stops and removes the destination with id; it reports whether
// there was one.
func (r *RWC) Delete(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.rules[id]
	delete(r.rules, id)
	return ok
}

// DeleteAll stops and removes every destination except those whose IDs are
// listed in keep.
func (r *RWC) DeleteAll(keep ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.rules {
		if !slicesContains(keep, id) {
			delete(r.rules, id)
		}
	}
}

// Refresh re-resolves every destination's topic, after stream rules change.
func (r *RWC) Refresh() {}

// Close stops every destination: websocket close frames sent, files flushed
// and closed. It waits for them.
func (r *RWC) Close() {}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
