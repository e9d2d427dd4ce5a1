package agg

import (
	"slices"
	"sync/atomic"
)

// streamCounters count a stream's changes for /metrics: written where the
// change already happens (a Set, a PMT going out), read from any goroutine.
type streamCounters struct {
	muteChanges atomic.Uint64
	pmtVersions atomic.Uint64
}

// StreamCounters are a stream's counts since its rule was first set.
type StreamCounters struct {
	// MuteChanges counts the Sets that changed which feeds the stream
	// combines (a mute or an unmute); a reorder or a repeat is none.
	MuteChanges uint64
	// PMTVersions counts the PMT versions the muxer has sent out: one when
	// the first feed went live, one for every change of the ES it lists.
	PMTVersions uint64
}

// Counters returns stream's counts, and whether it has a rule.
func (a *Agg) Counters(stream string) (StreamCounters, bool) {
	a.mu.Lock()
	s := a.streams[stream]
	a.mu.Unlock()
	if s == nil {
		return StreamCounters{}, false
	}
	return StreamCounters{MuteChanges: s.counts.muteChanges.Load(), PMTVersions: s.counts.pmtVersions.Load()}, true
}

// sameFeeds reports whether a and b name the same set of feeds.
func sameFeeds(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
