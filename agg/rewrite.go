package agg

import (
	"time"

	"github.com/vwlab/vw/ts"
)

// pkt is one media packet on its way through forward, with what the steps
// learn of it.
type pkt struct {
	p       []byte
	off     int  // where the payload starts
	pusi    bool // payload_unit_start_indicator
	payload bool // the packet carries payload bytes
	start   bool // a PES starts here: pusi and payload

	// At a PES start:
	h       ts.PESHeader
	pts     uint64 // the input PTS and decoding timestamp, when h.PTS > 0
	dec     uint64
	rebased bool // the feed's clock was learned again: its PCR jumps here
}

// forward copies one media packet of e to the output, rewritten: output
// PID and continuity counter, timestamps on the stream clock, stream_id.
// Each step may drop the packet.
func (m *mux) forward(f *feed, e *es, p []byte, off int, now time.Time) {
	k := pkt{p: p, off: off, pusi: ts.PayloadUnitStart(p), payload: ts.HasPayload(p) && off < ts.PacketSize}
	k.start = k.pusi && k.payload
	if !e.inSequence(&k, now) || e.drainEnds(f, &k) {
		return
	}
	if k.start && !m.startPES(e, &k, now) || !k.start && !e.inPES(&k) {
		return // not in a PES that e forwards
	}
	pcr, _, hasPCR := ts.PCR(p)
	if hasPCR && !e.pcr {
		e.pcr = true // the PMT may want it as the PCR PID
		m.psi.rebuild = true
	}
	if k.h.PTS > 0 && !m.retime(f, e, &k, now) {
		return
	}
	if hasPCR && !f.clk.ok {
		m.learnClock(f, int64(pcr), now) // a PCR before any PTS
	}
	m.putPSI(now, mediaFollows)
	m.write(f, e, &k)
	if e.typ == ts.TypeADTS && k.h.PTS > 0 && k.off+k.h.DataOffset < ts.PacketSize {
		m.noteAAC(e, k.p[k.off+k.h.DataOffset:], now) // for a silent stand-in
	}
	if f.draining && e.pesLeft == 0 {
		e.stopped = true // that packet completed its PES
	}
}

// inSequence checks the input continuity counter. A repeated packet is
// dropped. A lost one (a full queue upstream) damages the rest of its
// PES, so e skips to the next PES start.
func (e *es) inSequence(k *pkt, now time.Time) bool {
	if !k.payload {
		return true
	}
	cc := ts.CC(k.p)
	if e.ccSeen {
		if cc == e.lastCC {
			return false
		}
		if cc != e.lastCC.Next() && !ts.Discontinuity(k.p) && !k.pusi && e.started {
			e.leave(now)
		}
	}
	e.lastCC, e.ccSeen = cc, true
	return true
}

// drainEnds reports whether e, of a feed being removed, has stopped: at
// its next PES start, or at once if it was not inside one.
func (e *es) drainEnds(f *feed, k *pkt) bool {
	if f.draining && (e.stopped || !e.started || k.pusi) {
		e.stopped = true
		return true
	}
	return false
}

// startPES parses the PES header that starts in k, and joins e to the
// output there if it is not already.
func (m *mux) startPES(e *es, k *pkt, now time.Time) bool {
	var err error
	if k.h, err = ts.ParsePES(k.p[k.off:]); err != nil {
		e.started = false
		return false
	}
	if !e.started && !m.join(e, k.p, now) {
		return false
	}
	e.pesLeft = -1
	if k.h.Length > 0 {
		e.pesLeft = k.h.Length + 6 - (ts.PacketSize - k.off)
	}
	return true
}

// join starts forwarding e at the PES that starts in p. Video waits for a
// keyframe (random access), for at most Config.KeyframeWait.
func (m *mux) join(e *es, p []byte, now time.Time) bool {
	if e.waitSince.IsZero() {
		e.waitSince = now
	}
	if e.kind == kindVideo && !ts.RandomAccess(p) && now.Sub(e.waitSince) < m.cfg.KeyframeWait {
		return false
	}
	e.started = true
	m.audioJoins(e)
	return true
}

// inPES reports whether a packet that starts no PES continues the one e
// is forwarding, and counts a bounded PES down: a bounded PES passes no
// further than its length.
func (e *es) inPES(k *pkt) bool {
	if !e.started {
		return false
	}
	if k.payload && e.pesLeft >= 0 {
		if e.pesLeft == 0 {
			return false // more data than the PES header announced
		}
		e.pesLeft = max(0, e.pesLeft-(ts.PacketSize-k.off))
	}
	return true
}

// write appends the packet to scratch with e's output PID and continuity
// counter, its timestamps and PCR moved by the feed's offset, and e's
// stream_id.
func (m *mux) write(f *feed, e *es, k *pkt) {
	n := len(m.scratch)
	m.scratch = append(m.scratch, k.p...)
	q := m.scratch[n:]
	ts.SetPID(q, e.outPID)
	o := &m.outs[e.outPID-outFirstPID]
	if k.payload {
		o.cc = o.cc.Next()
	}
	ts.SetCC(q, o.cc)
	if k.pusi && k.payload {
		pl := q[k.off:]
		if k.h.PTS > 0 {
			ts.PutTimestamp(pl[k.h.PTS:], k.pts+f.clk.offset)
			if k.h.DTS > 0 {
				ts.PutTimestamp(pl[k.h.DTS:], k.dec+f.clk.offset)
			}
		}
		if e.sid != 0 && (ts.IsAudioStreamID(k.h.StreamID) || ts.IsVideoStreamID(k.h.StreamID)) {
			pl[3] = e.sid
		}
	}
	if base, ext, ok := ts.PCR(q); ok {
		ts.SetPCR(q, base+f.clk.offset, ext)
		moved := e.outPID == m.psi.pcrMoved
		if k.rebased || moved {
			ts.SetDiscontinuity(q) // the PCR jumps: say so, as the standard asks
		}
		if moved {
			m.psi.pcrMoved = 0
		}
	}
}
