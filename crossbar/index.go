package crossbar

import (
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vwlab/vw/jsmpeg"
	"github.com/vwlab/vw/ts"
)

// The index page (GET /) answers anyone, so it must cost next to nothing
// however many clients the relay has: it is built from the live set and the
// per-topic counts that admit keeps, without walking a single client, with
// the relay's lock held only to copy a few fields per live stream, and at
// most once per indexTTL; every request in between gets the same list.
// Formatting happens in jsmpeg's handler, after all locks are let go.

// indexTTL is how long one list of live streams is served.
const indexTTL = time.Second

// indexCache is the last list of live streams and when it was built.
type indexCache struct {
	mu      sync.Mutex // held while one request builds; the others wait for it
	at      time.Time
	streams []jsmpeg.Stream
}

// liveStreams lists the streams that have a publisher and that anyone may
// watch, for the index page: the names of private streams stay private.
// The list is shared by every caller until the next build: read it only.
func (s *Server) liveStreams() []jsmpeg.Stream {
	now := s.cfg.Now()
	ix := &s.index
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if age := now.Sub(ix.at); !ix.at.IsZero() && age >= 0 && age < indexTTL {
		return ix.streams
	}
	ix.streams, ix.at = s.buildIndex(), now
	return ix.streams
}

// buildIndex copies what the index shows of each live stream under the
// relay's lock, then filters and sorts outside it.
func (s *Server) buildIndex() []jsmpeg.Stream {
	type row struct {
		jsmpeg.Stream
		psi *psiCache
	}
	s.mu.Lock()
	rows := make([]row, 0, len(s.live))
	for name, t := range s.live {
		rows = append(rows, row{jsmpeg.Stream{Name: name, Viewers: t.subs, BitRate: t.rate.in, Since: t.liveSince}, t.psi})
	}
	s.mu.Unlock()
	out := make([]jsmpeg.Stream, 0, len(rows))
	local := make(map[string]bool, len(rows))
	for _, r := range rows {
		local[strings.TrimPrefix(r.Name, "/out/")] = true
	}
	out = s.remoteStreams(out, local)
	for _, r := range rows {
		if !s.auth.Watchable(r.Name) {
			continue
		}
		r.Name = strings.TrimPrefix(r.Name, "/out/")
		// The PMT cache has its own lock: read it after letting the relay's go.
		if f := r.psi.family(); f != ts.FamilyNone {
			r.Codec = f.Title()
		}
		out = append(out, r.Stream)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
