package agg

import (
	"time"

	"github.com/vwlab/vw/ts"
)

// forward copies one media packet to the output, rewritten: output PID and
// continuity counter, timestamps on the stream clock, stream_id.
func (m *mux) forward(f *feed, e *es, p []byte, off int, now time.Time) {
	pusi := ts.PayloadUnitStart(p)
	hasPayload := ts.HasPayload(p) && off < ts.PacketSize
	if hasPayload {
		cc := ts.CC(p)
		if e.ccSeen {
			if cc == e.lastCC {
				return // duplicate packet
			}
			if cc != e.lastCC.Next() && !ts.Discontinuity(p) && !pusi && e.started {
				// Lost input (a full queue upstream): the rest of this PES
				// is damaged, so skip to the next one.
				e.started = false
				e.waitSince = now
			}
		}
		e.lastCC, e.ccSeen = cc, true
	}
	if f.draining {
		if e.stopped || !e.started || pusi {
			e.stopped = true
			return
		}
	}
	var h ts.PESHeader
	if pusi && hasPayload {
		var err error
		if h, err = ts.ParsePES(p[off:]); err != nil {
			e.started = false
			return
		}
		if !e.started {
			if e.waitSince.IsZero() {
				e.waitSince = now
			}
			if e.kind == kindVideo && !ts.RandomAccess(p) && now.Sub(e.waitSince) < m.cfg.KeyframeWait {
				return
			}
			e.started = true
			m.audioJoins(e)
		}
		e.pesLeft = -1
		if h.Length > 0 {
			e.pesLeft = h.Length + 6 - (ts.PacketSize - off)
		}
	} else {
		if !e.started {
			return
		}
		if hasPayload && e.pesLeft >= 0 {
			if e.pesLeft == 0 {
				return // more data than the PES header announced
			}
			e.pesLeft -= ts.PacketSize - off
			if e.pesLeft < 0 {
				e.pesLeft = 0
			}
		}
	}
	if _, _, ok := ts.PCR(p); ok && !e.pcr {
		e.pcr = true
		m.psi.rebuild = true
	}
	// Timestamps first: the clock may decide to skip this PES.
	disc := false
	var pts, dec uint64
	if pusi && hasPayload && h.PTS > 0 {
		pl := p[off:]
		pts = ts.Timestamp(pl[h.PTS:])
		dec = pts // decoding order: DTS when there is one
		if h.DTS > 0 {
			dec = ts.Timestamp(pl[h.DTS:])
		}
		step := ts.TimestampDiff(dec, e.lastPTS)
		if e.lastPTS == noPTS || step < 0 {
			step = 0
		}
		e.lastPTS = dec
		var skip bool
		disc, skip = m.syncClock(f, e, int64(dec), step, now)
		if skip {
			e.started = false
			e.waitSince = now
			return
		}
		// Whatever happened to the feed (a restart, a new clock), its
		// output PID's timestamps keep going forward.
		out := (dec + f.offset) & ts.TimestampMask
		if o := &m.outs[e.outPID-outFirstPID]; o.hasLast {
			if adv := ts.TimestampDiff(out, o.last); adv <= 0 {
				bump := uint64(-adv + max(step, slewStep))
				f.offset = (f.offset + bump) & ts.TimestampMask
				out = (out + bump) & ts.TimestampMask
			}
			o.last = out
		} else {
			o.last, o.hasLast = out, true
		}
	}
	m.putPSI(now, mediaFollows)

	n := len(m.scratch)
	m.scratch = append(m.scratch, p...)
	q := m.scratch[n:]
	ts.SetPID(q, e.outPID)
	o := &m.outs[e.outPID-outFirstPID]
	if hasPayload {
		o.cc = o.cc.Next()
	}
	ts.SetCC(q, o.cc)
	if pusi && hasPayload {
		pl := q[off:]
		if h.PTS > 0 {
			ts.PutTimestamp(pl[h.PTS:], pts+f.offset)
			if h.DTS > 0 {
				ts.PutTimestamp(pl[h.DTS:], dec+f.offset)
			}
		}
		if e.sid != 0 && (ts.IsAudioStreamID(h.StreamID) || ts.IsVideoStreamID(h.StreamID)) {
			pl[3] = e.sid
		}
		if e.typ == ts.TypeADTS && h.PTS > 0 && h.DataOffset < len(pl) {
			m.noteAAC(e, pl[h.DataOffset:], now)
		}
	}
	if base, ext, ok := ts.PCR(q); ok {
		if !f.clockOK {
			m.learnClock(f, int64(base), now)
		}
		ts.SetPCR(q, base+f.offset, ext)
		if disc {
			ts.SetDiscontinuity(q) // the PCR jumps: say so, as the standard asks
		}
	}
	if f.draining && e.pesLeft == 0 {
		e.stopped = true // that packet completed its PES
	}
}
