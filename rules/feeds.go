package rules

import (
	"strings"

	"github.com/vwlab/vw/agg"
)

// WatchFeed returns what an ingest connection reports its feed's PSI to, so
// that stream rules can be checked against the feeds' codecs.
func (rs *Service) WatchFeed(feed string, from uint64) *agg.FeedWatcher {
	return rs.agg.WatchFeed(feed, from)
}

// Feeds returns the connected feeds: their codecs and the streams that
// leave them out, with the reason.
func (rs *Service) Feeds() map[string]agg.FeedStatus { return rs.agg.Feeds() }

// Codec names the codec family of a stream, or of a feed with no stream of
// its name ("mpeg1", "h264", "" when unknown), for the preview's player page.
func (rs *Service) Codec(name string) string {
	return rs.agg.Family(strings.TrimPrefix(name, "/")).String()
}
