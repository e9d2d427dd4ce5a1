package agg

import (
	"time"

	"github.com/vwlab/vw/ts"
)

type kind uint8

const (
	kindOther kind = iota
	kindVideo
	kindAudio
)

// feed is one feed of the stream, as the muxer sees it.
type feed struct {
	name string
	from uint64 // the ingest connection of the current ffmpeg process

	seen bool      // any data since it was added
	live bool      // sent data within the grace period: its ES are in the PMT
	last time.Time // when it last sent data

	psi feedPSI   // its own PAT and PMT (intake.go)
	es  []*es     // its elementary streams
	clk feedClock // its timestamps on the stream clock (clock.go)

	draining   bool      // no longer in the rule: finishing the PES it is in
	drainUntil time.Time // when the cut is made wherever it is
	removed    bool      // out of the stream: its input is ignored

	// Codec admission (codec.go): in the stream's PMT, or why not.
	admitted bool
	leftOut  string
}

// es is one elementary stream of a feed.
type es struct {
	inPID  uint16
	outPID uint16
	typ    uint8
	info   []byte // ES descriptors from the feed's PMT (owned copy)
	kind   kind
	pcr    bool // carries the feed's PCR

	// Per connection.
	started   bool          // forwarding: joined at a PES start
	waitSince time.Time     // when it began waiting to join (video waits for a keyframe)
	lastCC    ts.Continuity // of the last input packet with a payload
	ccSeen    bool          // lastCC is set
	pesLeft   int           // bytes of the current PES still to come; -1 unbounded
	lastPTS   uint64        // the last input PTS, noPTS for none
	stopped   bool          // draining: this ES has reached its PES boundary

	sid byte // stream_id written into its PES headers; 0 keeps the feed's
}

func newFeed(name string) *feed {
	f := &feed{name: name}
	f.psi.reset()
	return f
}

// find returns the feed of that name still in the stream, or nil.
func (m *mux) find(name string) *feed {
	for _, f := range m.feeds {
		if f.name == name {
			return f
		}
	}
	return nil
}

// drain starts removing f: each of its ES that is inside a PES carries on
// to that PES's end (jsmpeg's MP2 decoder does not survive a cut frame).
func (m *mux) drain(f *feed, now time.Time) {
	f.draining = true
	f.drainUntil = now.Add(m.cfg.DrainMax)
	for _, e := range f.es {
		e.stopped = !e.started || !f.live || e.pesLeft == 0
	}
}

// draining reports whether some removed feed is still finishing a PES.
func (m *mux) draining() bool {
	for _, f := range m.feeds {
		if f.draining {
			return true
		}
	}
	return false
}

// finishDrained removes the draining feeds whose ES have all stopped.
func (m *mux) finishDrained() {
	j := 0
	for _, f := range m.feeds {
		if f.draining && f.allStopped() {
			f.removed = true
			m.psi.rebuild = true
			continue
		}
		m.feeds[j] = f
		j++
	}
	clear(m.feeds[j:])
	m.feeds = m.feeds[:j]
}

func (f *feed) allStopped() bool {
	for _, e := range f.es {
		if !e.stopped {
			return false
		}
	}
	return true
}

// restart forgets what belonged to the feed's previous ffmpeg process.
func (f *feed) restart(from uint64) {
	f.from = from
	f.psi.reset()
	f.clk.ok = false
	for _, e := range f.es {
		e.resetConn()
	}
}

// noPTS marks an unknown PTS (real ones have 33 bits).
const noPTS = 1 << 40

// leave stops forwarding e until it joins again at a PES start.
func (e *es) leave(now time.Time) {
	e.started = false
	e.waitSince = now
}

func (e *es) resetConn() {
	e.lastPTS = noPTS
	e.started = false
	e.waitSince = time.Time{}
	e.ccSeen = false
	e.pesLeft = -1
}

func (f *feed) findES(pid uint16) *es {
	for _, e := range f.es {
		if e.inPID == pid {
			return e
		}
	}
	return nil
}

func (e *es) setType(typ uint8, info []byte) {
	e.typ = typ
	e.info = append(e.info[:0], info...)
	switch {
	case ts.IsVideoType(typ):
		e.kind = kindVideo
	case ts.IsAudioType(typ):
		e.kind = kindAudio
	default:
		e.kind = kindOther
	}
}
