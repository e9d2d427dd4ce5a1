package api

import (
	"sync/atomic"

	"github.com/vwlab/vw/ts"
)

// maxFeedCounters bounds how many feed names keep their counters after
// their POST ends; beyond it, those of feeds with no POST are forgotten.
const maxFeedCounters = 1024

// feedCounters count what a feed's POSTs brought that was not clean
// MPEG-TS, across POSTs, so a feed that reconnects keeps its counts. The
// ingest adds only when something was wrong (a clean feed costs no atomic
// operation); /metrics reads.
type feedCounters struct {
	skipped  atomic.Uint64 // bytes dropped while finding packet sync
	resyncs  atomic.Uint64 // times sync was found again after dropping bytes
	ccErrors atomic.Uint64 // packets whose continuity counter broke
}

// countersOf returns the feed's counters, making them if need be. Called
// with s.mu held.
func (s *Server) countersOf(feed string) *feedCounters {
	if c := s.counters[feed]; c != nil {
		return c
	}
	if len(s.counters) >= maxFeedCounters {
		for f := range s.counters {
			if s.feeds[f] == nil {
				delete(s.counters, f)
			}
		}
	}
	c := new(feedCounters)
	s.counters[feed] = c
	return c
}

// feedCounts returns a snapshot of the counters' owners, for /metrics.
func (s *Server) feedCounts() map[string]*feedCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*feedCounters, len(s.counters))
	for f, c := range s.counters {
		out[f] = c
	}
	return out
}

// inputCheck is one POST's view of its input: it remembers what the
// Aligner had counted, and checks continuity per PID.
type inputCheck struct {
	c                *feedCounters
	cc               ts.ContinuityCheck
	skipped, resyncs uint64
}

// observe counts what a read brought: the Aligner's totals so far and the
// whole packets it emitted.
func (ic *inputCheck) observe(al *ts.Aligner, pkts []byte) {
	if n := al.Skipped(); n != ic.skipped {
		ic.c.skipped.Add(n - ic.skipped)
		ic.skipped = n
	}
	if n := al.Resyncs(); n != ic.resyncs {
		ic.c.resyncs.Add(n - ic.resyncs)
		ic.resyncs = n
	}
	if n := ic.cc.Check(pkts); n > 0 {
		ic.c.ccErrors.Add(uint64(n))
	}
}
