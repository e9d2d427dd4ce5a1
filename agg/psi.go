package agg

import (
	"bytes"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/ts"
)

// outPSI is the stream's own PAT and PMT. Whatever may change the set of
// ES (a feed joining, leaving, going silent, a new PMT from a feed) sets
// rebuild; buildPMT turns that into a new version only when the table
// really differs; due alone decides when the tables go out.
type outPSI struct {
	pat     []byte // one program, its PMT on outPMTPID: never changes
	pmt     []byte // the PMT in force
	next    []byte // where the next PMT is built, to compare with pmt
	tbl     ts.PMT
	version ts.Version
	rebuild bool      // the ES set may have changed since the PMT was built
	changed bool      // the PMT changed since it last went out
	sent    bool      // PAT and PMT have gone out at least once
	repeat  time.Time // when they are next due by the clock alone
	patCC   ts.Continuity
	pmtCC   ts.Continuity
	// pcrMoved is the PCR PID a changed PMT moved the PCR to, until its
	// first PCR has gone out flagged (0: none). Each feed's encoder keeps
	// its own distance between PCR and PTS, so the program's clock jumps
	// where the PCR changes PID, and the standard wants that said.
	pcrMoved uint16
}

// psiMoment is what the muxer is doing when it asks whether PAT and PMT
// are due.
type psiMoment uint8

const (
	mediaFollows   psiMoment = iota // a media packet is about to be written
	nothingFollows                  // a rule change or an input message is done
	liveTick                        // time passed while some feed is live
)

// due decides whether PAT and PMT go out now. The first time, they
// lead the first media packet, never alone. After that they go out at
// once when the PMT changed (so a mute is in the PMT before anything
// follows), media or not; and they repeat every PSIInterval while media
// flows: in front of a media packet, or at a tick while a feed is live,
// since a feed may sit between PES longer than that. repeatAt says when
// a tick should next ask.
func (p *outPSI) due(now time.Time, at psiMoment) bool {
	if !p.sent {
		return at == mediaFollows
	}
	return p.changed || at != nothingFollows && !now.Before(p.repeat)
}

// repeatAt returns when PAT and PMT repeat if nothing else sends them,
// and false before they first went out.
func (p *outPSI) repeatAt() (time.Time, bool) {
	return p.repeat, p.sent
}

// putPSI appends PAT and PMT to scratch when due says so, first
// rebuilding the PMT if the ES set may have changed.
func (m *mux) putPSI(now time.Time, at psiMoment) {
	if m.psi.rebuild {
		m.buildPMT()
	}
	if !m.psi.due(now, at) {
		return
	}
	p := &m.psi
	if p.changed {
		m.counts.pmtVersions.Add(1)
	}
	m.scratch, p.patCC = ts.AppendSectionPackets(m.scratch, ts.PIDPAT, p.patCC, p.pat)
	m.scratch, p.pmtCC = ts.AppendSectionPackets(m.scratch, outPMTPID, p.pmtCC, p.pmt)
	p.repeat, p.changed, p.sent = now.Add(m.cfg.PSIInterval), false, true
}

// buildPMT recomputes the output PMT from the live feeds. Only a table
// that really differs takes the next version and is marked changed, which
// sends it at once.
func (m *mux) buildPMT() {
	p := &m.psi
	p.rebuild = false
	m.admit()
	t := &p.tbl
	was := t.PCRPID
	m.listES(t)
	t.Version = uint8(p.version)
	p.next = ts.AppendPMT(p.next[:0], t)
	if p.pmt != nil && bytes.Equal(p.next, p.pmt) {
		return
	}
	p.version = p.version.Next()
	t.Version = uint8(p.version)
	p.next = ts.AppendPMT(p.next[:0], t)
	p.pmt, p.next = p.next, p.pmt
	p.changed = true
	if was != 0 && was != t.PCRPID {
		p.pcrMoved = t.PCRPID
	}
	m.log.WithFields(logrus.Fields{"version": p.version, "streams": len(t.Streams)}).Debug("PMT changed")
}

// listES fills t with the ES of the live feeds, in rule order, the PCR on
// the first video (else the first ES that carries one, else the first
// ES). It also assigns stream_ids: the first video and audio keep 0xE0
// and 0xC0, which jsmpeg plays; later ones get 0xE1, 0xC1...
func (m *mux) listES(t *ts.PMT) {
	t.Program = outProgram
	t.PCRPID = ts.PIDNull
	t.Info = nil
	t.Streams = t.Streams[:0]
	var pcrAny uint16
	var video, audio byte
	for _, f := range m.feeds {
		if !f.live || f.leftOut != "" {
			continue
		}
		for _, e := range f.es {
			t.Streams = append(t.Streams, ts.Stream{Type: e.typ, PID: e.outPID, Info: e.info})
			switch e.kind {
			case kindVideo:
				if video == 0 {
					t.PCRPID = e.outPID
				}
				e.sid = 0xe0 + min(video, 0x0f)
				video++
			case kindAudio:
				e.sid = 0xc0 + min(audio, 0x1f)
				audio++
			default:
				e.sid = 0
			}
			if e.pcr && pcrAny == 0 {
				pcrAny = e.outPID
			}
		}
	}
	m.decideSilence(t)
	if t.PCRPID == ts.PIDNull {
		if pcrAny != 0 {
			t.PCRPID = pcrAny
		} else if len(t.Streams) > 0 {
			t.PCRPID = t.Streams[0].PID
		}
	}
}
