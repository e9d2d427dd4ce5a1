package api

import (
	"net/http"
	"strings"

	"github.com/vwlab/vw/agg"
)

// WatchFeed returns what an ingest connection reports its feed's PSI to, so
// that stream rules can be checked against the feeds' codecs.
func (rs *Rules) WatchFeed(feed string, from uint64) *agg.FeedWatcher {
	return rs.agg.WatchFeed(feed, from)
}

// Feeds returns the connected feeds: their codecs and the streams that
// leave them out, with the reason.
func (rs *Rules) Feeds() map[string]agg.FeedStatus { return rs.agg.Feeds() }

func (s *Server) handleGetFeeds(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.rules.Feeds())
}

// Codec names the codec family of a stream, or of a feed with no stream of
// its name ("mpeg1", "h264", "" when unknown), for the preview's player page.
func (rs *Rules) Codec(name string) string {
	return rs.agg.Family(strings.TrimPrefix(name, "/")).String()
}
