package agg

import (
	"bytes"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/ts"
)

// buildPMT recomputes the output PMT from the live feeds and bumps its
// version if it changed. It also assigns stream_ids: the first video and
// audio (in rule order) keep 0xE0 and 0xC0, which jsmpeg plays; later ones
// get 0xE1, 0xC1...
func (m *mux) buildPMT() {
	m.rebuild = false
	m.admit()
	t := &m.pmtTbl
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
	t.Version = uint8(m.version)
	m.pmtNext = ts.AppendPMT(m.pmtNext[:0], t)
	if m.pmt != nil && bytes.Equal(m.pmtNext, m.pmt) {
		return
	}
	m.version = m.version.Next()
	t.Version = uint8(m.version)
	m.pmtNext = ts.AppendPMT(m.pmtNext[:0], t)
	m.pmt, m.pmtNext = m.pmtNext, m.pmt
	m.dirty = true
	m.log.WithFields(logrus.Fields{"version": m.version, "streams": len(t.Streams)}).Debug("PMT changed")
}

// beforeMedia puts PAT and PMT out first when they changed or are due.
func (m *mux) beforeMedia(now time.Time) {
	if m.rebuild {
		m.buildPMT()
	}
	if m.dirty || !m.psiSent || now.Sub(m.lastPSI) >= m.cfg.PSIInterval {
		m.appendPSI(now)
	}
}

// flushPSIIfDirty sends a changed PAT/PMT at once, even with no media to
// follow (a feed removed or gone silent).
func (m *mux) flushPSIIfDirty(now time.Time) {
	if m.rebuild {
		m.buildPMT()
	}
	if m.dirty && m.psiSent {
		m.appendPSI(now)
		m.flush()
	}
}

func (m *mux) appendPSI(now time.Time) {
	m.scratch, m.patCC = ts.AppendSectionPackets(m.scratch, ts.PIDPAT, m.patCC, m.pat)
	m.scratch, m.pmtCC = ts.AppendSectionPackets(m.scratch, outPMTPID, m.pmtCC, m.pmt)
	m.lastPSI = now
	m.dirty = false
	m.psiSent = true
}
