package crossbar

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/internal/linkrate"
	"github.com/vwlab/vw/internal/sockq"
)

// Live means live for a viewer on a thin link too. A viewer whose link is
// slower than its stream would fall further behind every second, queueing
// until a bound disconnects it. Instead, a watcher goroutine measures every
// stream viewer a few times per MaxDelay: its backlog (bytes queued for it
// in the relay plus bytes its socket has not had acknowledged) and how fast
// its link drains it. A viewer whose backlog would soon take longer than
// holdAt of MaxDelay to drain is held: its messages go through its pump,
// whose skipper (skip.go) drops what would arrive too late, video up to
// the newest keyframe first, whole audio PES only if even they would. Once
// its backlog is under releaseBelow, its link has kept up for linkGap and
// its skipper is back to the stream as published, it is released and gets
// the stream's own messages straight from the publisher's goroutine again,
// like any other viewer. The queue and byte bounds stay as the last resort
// for a viewer that cannot take even that.
//
// A healthy viewer pays next to nothing per message for this (an atomic
// load where a message is handed to it): the watcher's work is per tick,
// one system call per viewer of a stream with keyframes, off the fan-out
// path.

// DefaultMaxDelay is Config.MaxDelay's default.
const DefaultMaxDelay = time.Second

// Fractions of MaxDelay, as how long what is ahead of a byte takes to
// drain: for a viewer, its backlog; for a PES, what is ahead of its start.
// What is left to the bound is for the picture's own bytes (a keyframe
// takes a while on a thin link, and a player shows it only once all of it
// is there) and for what the relay cannot see: queues past its socket, a
// busy machine, a link whose rate changes.
const (
	holdAt       = 0.2 // hold a viewer that would be this far behind at the next look
	releaseBelow = 0.1 // release one under this whose link has kept up
	skipAt       = 0.4 // a video PES that would start later is dropped, with its GOP's rest
	resumeBelow  = 0.2 // a keyframe that would start within this resumes video
	audioOff     = 0.7 // an audio PES that would wait longer for the link is dropped
)

// Shedding's timing.
const (
	// linkGap is how long a link may go without a backlog before its rate
	// is measured afresh.
	linkGap = linkrate.Gap
	// linkMin is how much busy time a link's rate needs before it counts.
	linkMin = 150 * time.Millisecond
	// joinGrace is how long after its replay (the cached GOP) a viewer's
	// backlog may stay up before it counts: TCP's slow start on a long
	// path is not a slow link.
	joinGrace = time.Second
	// regimeQuiet is how long a viewer must go without skipping for its
	// skipping to count as over, for the log: on a link a little slower
	// than the stream, whole GOPs get through between skips.
	regimeQuiet = 5 * time.Second
)

// viewerShed is a viewer's skipping state.
type viewerShed struct {
	// mu orders level and held between the watcher and the pump, so that
	// held is never cleared while the level is up.
	mu sync.Mutex
	// level is the watcher's verdict: 1 to hold, 0 to release. held turns
	// direct hand-over off, so that every message goes through the pump's
	// skipper; the watcher sets it with level 1, the pump clears it once
	// it is back to the stream as published at level 0.
	level atomic.Int32
	held  atomic.Bool
	// settled counts the stream's bytes the pump has dealt with other than
	// by writing them: dropped less added. A backlog is what is published
	// less what was written and settled.
	settled     atomic.Int64
	gops, bytes atomic.Uint64 // skipped
	audioPES    atomic.Uint64 // audio PES skipped
	behind      atomic.Int64  // the watcher's latest figure, ns
	replayedAt  atomic.Int64  // when the pump finished the replay, unix ns
	episodes    atomic.Uint64 // holds begun
	linkBps     atomic.Int64  // the link's measured rate, bytes/s, 0 unknown
	streamBps   atomic.Int64  // the stream's rate, bytes/s
	skipper     *skipper      // the pump's
	sock        syscall.RawConn
	sockDone    bool       // the pump's
	watch       watchState // the watcher's
}

// watchState is what the watcher keeps of one viewer.
type watchState struct {
	sock     syscall.RawConn
	sockDone bool
	ready    bool // past the join grace
	link     linkRate

	// For the log: skipping since regimeFrom, the latest skip at
	// lastSkip; counts when it began.
	regime        bool
	regimeFrom    time.Time
	lastSkip      time.Time
	lastBytes     uint64
	gops0, bytes0 uint64
	audio0        uint64
	maxBehind     time.Duration
}

// topicShed counts what a stream's viewers skipped.
type topicShed struct {
	gops, bytes atomic.Uint64
	rate        streamRate // the watcher's
}

// watched is one viewer to look at in a tick.
type watched struct {
	c      *client
	subPos uint64
	rate   float64
}

// clock is the relay's monotonic clock, for hub.Message.At: nanoseconds
// since it started.
func (s *Server) clock() int64 { return int64(time.Since(s.started)) }

// behindTick is how often the watcher looks: a tenth of the bound, within
// 10 to 100 ms.
func (s *Server) behindTick() time.Duration {
	return min(max(s.cfg.MaxDelay/10, 10*time.Millisecond), 100*time.Millisecond)
}

// watchBehind looks at every stream viewer each tick until ctx ends.
func (s *Server) watchBehind(ctx context.Context) {
	tick := time.NewTicker(s.behindTick())
	defer tick.Stop()
	var list []watched
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			list = s.watchList(list[:0], now)
			for _, w := range list {
				w.c.watchLag(now, w, s.cfg.MaxDelay, s.behindTick())
			}
			clear(list)
		}
	}
}

// watchList samples each stream's rate and lists its viewers: of streams
// whose keyframe cache has seen a keyframe, as skipping needs one to
// resume at (anything else a viewer falls behind on meets the queue
// bounds alone).
func (s *Server) watchList(dst []watched, now time.Time) []watched {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.topics {
		if t.cache == nil || t.cache.key.Load() == nil {
			continue
		}
		rate := t.shed.rate.sample(now, t.pos.Load())
		for _, c := range t.clients {
			if c.role == Viewer && c.sub != nil && c.ctx.Err() == nil {
				dst = append(dst, watched{c: c, subPos: c.subPos, rate: rate})
			}
		}
	}
	return dst
}

// watchLag measures one viewer and sets its level.
func (c *client) watchLag(now time.Time, w watched, maxDelay, tick time.Duration) {
	sh := &c.shed
	backlog, ok := c.measureLag(now, w)
	if !ok {
		return
	}
	ws := &sh.watch
	sh.streamBps.Store(int64(w.rate))
	drain, known := ws.link.rate(now)
	if known {
		sh.linkBps.Store(int64(drain))
	} else {
		sh.linkBps.Store(0)
		drain = w.rate // no queue seen: the link has kept up
	}
	var d, next time.Duration
	if busy := int64(w.rate / 20); backlog > busy && drain > 0 {
		d = seconds(float64(backlog) / drain)
		next = d
		if sh.level.Load() == 0 && w.rate > drain {
			// Still getting everything: the backlog grows till the next look.
			next += time.Duration(float64(tick) * (w.rate/drain - 1))
		}
	} else if backlog > busy {
		d, next = time.Hour, time.Hour // a link that takes nothing
	}
	sh.behind.Store(int64(d))
	level := shedLevel(sh.level.Load(), d, next, ws.link.busyLately(now), maxDelay)
	if began := sh.setLevel(level); began {
		sh.episodes.Add(1)
	}
	c.logShed(now, d, drain, w.rate)
}

// measureLag samples a viewer's backlog and its link, once it has written
// what it joined with and is past the join grace; ok says whether it is.
func (c *client) measureLag(now time.Time, w watched) (backlog int64, ok bool) {
	sh := &c.shed
	ws := &sh.watch
	at := sh.replayedAt.Load()
	if at == 0 {
		return 0, false // still writing what it joined with
	}
	if !ws.sockDone {
		ws.sock, ws.sockDone = sockq.Of(c.nc.Conn), true
	}
	unacked := int64(0)
	if ws.sock != nil {
		unacked = sockq.Unacked(ws.sock)
	}
	out := c.bytesOut.Load()
	done := int64(out) + sh.settled.Load()
	queued := max(int64(c.topic.pos.Load()-w.subPos)-int64(c.own.Load())-done, 0)
	backlog = queued + unacked
	busy := int64(w.rate / 20) // 50 ms of the stream
	ws.link.sample(now, out-uint64(min(unacked, int64(out))), backlog, busy)
	if !ws.ready {
		if backlog > busy && now.Sub(time.Unix(0, at)) < joinGrace {
			return 0, false
		}
		ws.ready = true
	}
	return backlog, true
}

// shedLevel is the level for a viewer at level whose backlog takes d to
// drain, and would take next at the next look if nothing changed; busy
// says whether its link has been the bottleneck lately. A held viewer is
// released only once its link has kept up for a while: until then its
// pump decides, PES by PES, and releasing it would leave what goes
// straight to it undecided till the next look.
func shedLevel(level int32, d, next time.Duration, busy bool, maxDelay time.Duration) int32 {
	bound := func(f float64) time.Duration { return time.Duration(f * float64(maxDelay)) }
	switch {
	case next > bound(holdAt):
		return 1
	case d < bound(releaseBelow) && !busy:
		return 0
	}
	return level
}

// setLevel sets the viewer's level; it reports whether that began a skip.
func (sh *viewerShed) setLevel(level int32) (began bool) {
	if level == sh.level.Load() && (level == 0 || sh.held.Load()) {
		return false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.level.Store(level)
	if level > 0 {
		return !sh.held.Swap(true)
	}
	return false
}

// release clears held once the pump is back to the stream as published,
// unless the level is up again; it reports whether it did.
func (sh *viewerShed) release() bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.level.Load() != 0 {
		return false
	}
	sh.held.Store(false)
	return true
}

// logShed writes a debug line when a viewer starts skipping and one when it
// has skipped nothing for regimeQuiet, with what it skipped in between: at
// most one pair per regimeQuiet, however often its link makes it skip.
func (c *client) logShed(now time.Time, d time.Duration, drain, rate float64) {
	sh := &c.shed
	ws := &sh.watch
	bytes := sh.bytes.Load()
	if bytes != ws.lastBytes {
		ws.lastBytes, ws.lastSkip = bytes, now
		ws.maxBehind = max(ws.maxBehind, d)
	}
	switch {
	case !ws.regime && bytes != ws.bytes0:
		ws.regime, ws.regimeFrom, ws.maxBehind = true, now, d
		c.log.WithFields(logrus.Fields{
			"behindMs":   d.Milliseconds(),
			"linkKbps":   int64(drain * 8 / 1000),
			"streamKbps": int64(rate * 8 / 1000),
		}).Debug("viewer behind: skipping what would arrive late")
	case ws.regime && now.Sub(ws.lastSkip) >= regimeQuiet:
		ws.regime = false
		c.log.WithFields(logrus.Fields{
			"for":          ws.lastSkip.Sub(ws.regimeFrom).Round(time.Millisecond).String(),
			"skippedGops":  sh.gops.Load() - ws.gops0,
			"skippedBytes": bytes - ws.bytes0,
			"skippedAudio": sh.audioPES.Load() - ws.audio0,
			"maxBehindMs":  ws.maxBehind.Milliseconds(),
		}).Debug("viewer back to full rate")
		ws.gops0, ws.bytes0, ws.audio0 = sh.gops.Load(), bytes, sh.audioPES.Load()
	}
}

// shedStats adds a viewer's skipping to its stats.
func (c *client) shedStats(cs *ClientStats) {
	sh := &c.shed
	cs.Skipping = sh.held.Load()
	cs.BehindMs = time.Duration(sh.behind.Load()).Milliseconds()
	cs.SkippedGops = sh.gops.Load()
	cs.SkippedBytes = sh.bytes.Load()
}
