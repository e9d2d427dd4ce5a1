package agg

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/ts"
)

// streamClock is the stream's own 90 kHz clock: base at t0, running with
// the wall clock. It starts when the first feed learns its offset.
type streamClock struct {
	set  bool
	t0   time.Time
	base uint64
}

// at returns the stream clock at now.
func (c *streamClock) at(now time.Time) uint64 {
	return (c.base + uint64(now.Sub(c.t0))*9/100000) & ts.TimestampMask
}

// feedClock maps a feed's timestamps onto the stream clock.
type feedClock struct {
	ok     bool   // offset learned, for the current ffmpeg process
	offset uint64 // added to the feed's timestamps, mod 2^33
	// bias is how far ahead of its arrival the offset put the feed when it
	// was learned: the lateness of the feeds already there, so that it
	// lines up with them.
	bias int64
	// The least lead (mapped timestamp - stream clock at arrival) of its
	// PES, over the current and the previous second: how late the feed's
	// timestamps run compared to its earliest arrivals.
	leadMin, leadPrev int64
	leadSince         time.Time
}

// retime puts the timestamps of a PES start on the stream clock: it reads
// them, lets syncClock learn or move the feed's offset, and keeps the
// output PID's timestamps going forward. It reports false when the clock
// drops the PES.
func (m *mux) retime(f *feed, e *es, k *pkt, now time.Time) bool {
	pl := k.p[k.off:]
	k.pts = ts.Timestamp(pl[k.h.PTS:])
	k.dec = k.pts // decoding order: DTS when there is one
	if k.h.DTS > 0 {
		k.dec = ts.Timestamp(pl[k.h.DTS:])
	}
	step := ts.TimestampDiff(k.dec, e.lastPTS)
	if e.lastPTS == noPTS || step < 0 {
		step = 0
	}
	e.lastPTS = k.dec
	var skip bool
	if k.rebased, skip = m.syncClock(f, e, int64(k.dec), step, now); skip {
		e.leave(now)
		return false
	}
	m.keepForward(f, e, k.dec, step)
	return true
}

// keepForward makes sure the output PID's timestamps go forward whatever
// happened to the feed (a restart, a new clock): if the feed's offset
// would send them back, it moves the offset on by the PES spacing.
func (m *mux) keepForward(f *feed, e *es, dec uint64, step int64) {
	out := (dec + f.clk.offset) & ts.TimestampMask
	o := &m.outs[e.outPID-outFirstPID]
	if o.hasLast {
		if adv := ts.TimestampDiff(out, o.last); adv <= 0 {
			bump := uint64(-adv + max(step, slewStep))
			f.clk.offset = (f.clk.offset + bump) & ts.TimestampMask
			out = (out + bump) & ts.TimestampMask
		}
	}
	o.last, o.hasLast = out, true
}

// learnClock sets f's offset so that its timestamp v maps to the stream
// clock now, plus the lead the other live feeds run with, so that media
// arriving together carries timestamps that match. The first feed to learn
// starts the stream clock at v.
func (m *mux) learnClock(f *feed, v int64, now time.Time) {
	if !m.clock.set {
		m.clock = streamClock{set: true, t0: now, base: uint64(v) & ts.TimestampMask}
	}
	var bias int64
	for _, g := range m.feeds {
		if g != f && g.live && g.clk.ok && !g.clk.leadSince.IsZero() {
			bias = max(bias, g.clk.lead())
		}
	}
	f.clk.bias = bias
	f.clk.offset = (m.clock.at(now) + uint64(bias) - uint64(v)) & ts.TimestampMask
	f.clk.ok = true
	f.clk.leadSince = time.Time{}
}

// lead returns how far ahead of its earliest arrivals the feed's
// timestamps run.
func (c *feedClock) lead() int64 {
	return max(0, min(c.leadMin, c.leadPrev))
}

// noteLead records the lead d of one PES.
func (c *feedClock) noteLead(d int64, now time.Time) {
	switch {
	case c.leadSince.IsZero():
		c.leadMin, c.leadPrev, c.leadSince = d, d, now
	case now.Sub(c.leadSince) >= time.Second:
		c.leadPrev, c.leadMin, c.leadSince = c.leadMin, d, now
	default:
		c.leadMin = min(c.leadMin, d)
	}
}

// syncClock learns f's offset at its first timestamp, and again when the
// feed has fallen behind the stream clock by more than Config.Resync (it
// stalled, or its clock jumped back); it reports such a rebase. A feed
// ahead of the clock is never rebased at a stroke, which would send its
// timestamps backwards: the offset follows the earliest arrival instead. A
// PES that arrives earlier, relative to its timestamp, than the one the
// offset was learned from shows that that one was delayed (ffmpeg starting
// under load and catching up). Timestamps cannot be squeezed to catch up:
// frames would overlap, which players and ffmpeg reject. So an audio
// stream a whole frame ahead drops that frame (a whole PES: MP2 frames
// stand alone) and its feed moves back by the frame's duration; skip says
// so. Video frames depend on each other and cannot be dropped: a video
// feed keeps the offset of its first PES.
func (m *mux) syncClock(f *feed, e *es, v, step int64, now time.Time) (rebased, skip bool) {
	if !f.clk.ok {
		m.learnClock(f, v, now)
		return false, false
	}
	d := ts.TimestampDiff(uint64(v)+f.clk.offset, m.clock.at(now))
	f.clk.noteLead(d, now)
	d -= f.clk.bias
	if limit := int64(m.cfg.Resync / (time.Second / 90000)); d < -limit {
		m.log.WithFields(logrus.Fields{"feed": f.name, "offMs": d / 90}).Debug("feed clock fell behind: rebasing")
		m.learnClock(f, v, now)
		return true, false
	}
	if d <= 0 {
		return false, false
	}
	if e.kind == kindAudio && step > 0 && d >= step {
		f.clk.offset = (f.clk.offset - uint64(step)) & ts.TimestampMask
		return false, true
	}
	return false, false
}

// slewStep is the least an output PID's timestamps advance when a feed's
// rebase would have sent them backwards and the PES spacing is unknown.
const slewStep = 450
