package agg

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/ts"
)

// Output layout. The program and PIDs copy what ffmpeg writes, so a stream
// of one feed looks like that feed.
const (
	outPMTPID   = 0x1000
	outFirstPID = 0x100
	outLastPID  = outPMTPID - 1
	outProgram  = 1
	outTSID     = 1

	// slabSize is the size of the blocks output messages are carved from,
	// so that a message costs no allocation of its own.
	slabSize = 64 << 10
	msgSlab  = 64
)

// outES is an output PID: it belongs to one (feed, input PID) for the life
// of the stream, so a feed keeps its PIDs across mute and unmute, and its
// continuity counter carries on.
type outES struct {
	cc      ts.Continuity // the last one written
	last    uint64        // the last decoding timestamp written
	hasLast bool
	aac     *aacTrack // what a silent stand-in needs (silence.go); AAC only
}

type outKey struct {
	feed string
	pid  uint16
}

// mux is the state of one stream's muxer. It is driven by one goroutine
// (see stream.run) and is synchronous: input, tick and the rule changes
// append output to scratch and publish it.
type mux struct {
	cfg     Config
	log     *logrus.Entry
	publish func(*hub.Message)

	feeds []*feed // rule order; draining feeds stay until their PES ends
	outs  []outES
	outOf map[outKey]uint16

	psi outPSI

	clock streamClock

	scratch []byte
	slab    []byte
	msgs    []hub.Message

	left   *leftOut        // where admit reports the feeds left out; may be nil
	counts *streamCounters // the stream's, once run sets it
	sil    silence         // the stand-in for a muted AAC track (silence.go)
}

func newMux(cfg Config, log *logrus.Entry, publish func(*hub.Message)) *mux {
	m := &mux{
		cfg:     cfg,
		log:     log,
		publish: publish,
		outOf:   make(map[outKey]uint16),
		scratch: make([]byte, 0, slabSize),
		counts:  new(streamCounters),
	}
	m.psi = outPSI{
		pat:     ts.AppendPAT(nil, outTSID, 0, []ts.Program{{Number: outProgram, PID: outPMTPID}}),
		version: 31, // the first PMT built takes version 0
		rebuild: true,
	}
	return m
}

// setFeeds makes names the stream's feeds, in that order. New feeds are
// added (their ES join at their next PES start); feeds no longer named
// start draining. It returns the feeds added, for the owner to subscribe.
func (m *mux) setFeeds(names []string, now time.Time) (added []*feed) {
	keep := make(map[string]int, len(names))
	for i, n := range names {
		if _, dup := keep[n]; !dup {
			keep[n] = i
		}
	}
	for _, f := range m.feeds {
		if _, ok := keep[f.name]; ok {
			f.draining = false // named again before its drain ended
		} else if !f.draining {
			m.drain(f, now)
		}
	}
	order := make([]*feed, 0, len(keep)+len(m.feeds))
	for i, n := range names {
		if keep[n] != i {
			continue
		}
		f := m.find(n)
		if f == nil {
			f = newFeed(n)
			added = append(added, f)
		}
		order = append(order, f)
	}
	for _, f := range m.feeds {
		if f.draining {
			order = append(order, f)
		}
	}
	m.feeds = order
	m.psi.rebuild = true
	m.finishDrained()
	m.putPSI(now, nothingFollows)
	m.flush()
	return added
}

// input muxes one message of feed f.
func (m *mux) input(f *feed, msg *hub.Message, now time.Time) {
	if f.removed {
		return
	}
	if !f.seen || msg.From != f.from {
		if f.seen {
			m.log.WithFields(logrus.Fields{"feed": f.name, "from": msg.From}).Debug("feed restarted")
		}
		f.restart(msg.From)
		f.seen = true
	}
	f.last = now
	if !f.live {
		f.live = true
		m.psi.rebuild = true
		m.log.WithField("feed", f.name).Debug("feed live")
	}
	d := msg.Data
	for len(d) >= ts.PacketSize {
		m.packet(f, d[:ts.PacketSize], now)
		d = d[ts.PacketSize:]
	}
	if f.draining {
		m.finishDrained()
	}
	m.putPSI(now, nothingFollows)
	m.flush()
}

// tick handles time: feeds gone silent leave the PMT, drains that took too
// long end, and PAT/PMT repeat while anything is live.
func (m *mux) tick(now time.Time) {
	anyLive := false
	for _, f := range m.feeds {
		if f.live && now.Sub(f.last) >= m.cfg.Grace {
			f.live = false
			m.psi.rebuild = true
			for _, e := range f.es {
				e.resetConn()
			}
			m.log.WithField("feed", f.name).Info("feed silent: left the stream until it returns")
		}
		if f.draining && (!f.live || !now.Before(f.drainUntil)) {
			for _, e := range f.es {
				e.stopped = true
			}
		}
		anyLive = anyLive || f.live
	}
	m.finishDrained()
	at := nothingFollows
	if anyLive {
		at = liveTick
	}
	m.putPSI(now, at)
	m.flush()
	m.emitSilence(now)
}

// deadline returns when tick must next run; zero for never.
func (m *mux) deadline() time.Time {
	var d time.Time
	earliest := func(t time.Time) {
		if d.IsZero() || t.Before(d) {
			d = t
		}
	}
	anyLive := false
	for _, f := range m.feeds {
		if f.live {
			anyLive = true
			earliest(f.last.Add(m.cfg.Grace))
		}
		if f.draining {
			earliest(f.drainUntil)
		}
	}
	if t, ok := m.psi.repeatAt(); ok && anyLive {
		earliest(t)
	}
	if t := m.silenceDue(); !t.IsZero() {
		earliest(t)
	}
	return d
}

// flush publishes what scratch holds as one message, carved from a slab.
func (m *mux) flush() {
	n := len(m.scratch)
	if n == 0 {
		return
	}
	if cap(m.slab)-len(m.slab) < n {
		m.slab = make([]byte, 0, max(slabSize, n))
	}
	start := len(m.slab)
	m.slab = append(m.slab, m.scratch...)
	if len(m.msgs) == 0 {
		m.msgs = make([]hub.Message, msgSlab)
	}
	msg := &m.msgs[0]
	m.msgs = m.msgs[1:]
	msg.Data = m.slab[start:len(m.slab):len(m.slab)]
	m.scratch = m.scratch[:0]
	m.publish(msg)
}
