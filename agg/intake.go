package agg

import (
	"bytes"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/ts"
)

// maxESPerFeed bounds what a garbage feed can make us track.
const maxESPerFeed = 16

// feedPSI is what intake keeps of a feed's own PAT and PMT, for the
// current ffmpeg process.
type feedPSI struct {
	pmtPID int // -1 until the PAT names it
	hasPMT bool
	pmtRaw []byte // last PMT section applied, to skip repeats cheaply
	patR   ts.SectionReader
	pmtR   ts.SectionReader
	progs  []ts.Program // parsing scratch
	pmt    ts.PMT       // parsing scratch
}

// reset forgets the tables of a previous ffmpeg process.
func (p *feedPSI) reset() {
	p.pmtPID = -1
	p.hasPMT = false
	p.pmtRaw = p.pmtRaw[:0]
	p.patR = ts.SectionReader{}
	p.pmtR = ts.SectionReader{}
}

// packet handles one input packet of f.
func (m *mux) packet(f *feed, p []byte, now time.Time) {
	off, ok := ts.PayloadOffset(p)
	if !ok || ts.TransportError(p) {
		return // malformed or known damaged
	}
	pid := ts.PID(p)
	switch {
	case pid == ts.PIDPAT:
		f.psi.patR.Push(p, func(b []byte) { m.onPAT(f, b) })
		return
	case int(pid) == f.psi.pmtPID:
		f.psi.pmtR.Push(p, func(b []byte) { m.onPMT(f, b) })
		return
	case pid < 0x20 || pid == ts.PIDNull:
		return // SDT, NIT, EIT, null packets...
	}
	e := f.findES(pid)
	if e == nil {
		if f.psi.hasPMT || !ts.PayloadUnitStart(p) || !ts.HasPayload(p) {
			return
		}
		if e = m.infer(f, pid, p[off:]); e == nil {
			return
		}
	}
	if m.blocked(f) {
		return
	}
	m.forward(f, e, p, off, now)
}

// infer makes an ES of a PID seen in a feed that has sent no PMT, from the
// stream_id of the PES starting in payload.
func (m *mux) infer(f *feed, pid uint16, payload []byte) *es {
	h, err := ts.ParsePES(payload)
	if err != nil {
		return nil
	}
	var typ uint8
	es := payload[h.DataOffset:]
	if h.DataOffset > len(payload) {
		es = nil
	}
	switch {
	case ts.IsVideoStreamID(h.StreamID):
		typ = 0x02 // MPEG-1/2 video, as ffmpeg labels mpeg1video
		if looksH264(es) {
			typ = 0x1b
		}
	case ts.IsAudioStreamID(h.StreamID):
		typ = 0x03 // MPEG-1 audio
		if len(es) >= 2 && es[0] == 0xff && es[1]&0xf6 == 0xf0 {
			typ = 0x0f // ADTS AAC: layer bits 00
		}
	default:
		return nil
	}
	e := m.newES(f, pid, typ, nil)
	if e != nil {
		m.log.WithFields(logrus.Fields{"feed": f.name, "pid": pid, "type": typ}).Debug("feed sent no PMT: stream inferred from its PES")
	}
	return e
}

// looksH264 reports whether b starts with an H.264 NAL unit (an access
// unit delimiter or parameter set) rather than an MPEG video start code.
func looksH264(b []byte) bool {
	if len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 1 {
		b = b[1:]
	}
	if len(b) < 4 || b[0] != 0 || b[1] != 0 || b[2] != 1 {
		return false
	}
	switch b[3] & 0x1f {
	case 9, 7, 6, 5:
		return b[3]&0x80 == 0
	}
	return false
}

// newES adds an ES to f, with its output PID. It returns nil when f has too
// many or the stream has run out of PIDs.
func (m *mux) newES(f *feed, pid uint16, typ uint8, info []byte) *es {
	if len(f.es) >= maxESPerFeed {
		return nil
	}
	k := outKey{f.name, pid}
	out, ok := m.outOf[k]
	if !ok {
		if len(m.outs) > outLastPID-outFirstPID {
			return nil
		}
		out = uint16(outFirstPID + len(m.outs))
		m.outs = append(m.outs, outES{cc: 15})
		m.outOf[k] = out
	}
	e := &es{inPID: pid, outPID: out, pesLeft: -1, lastPTS: noPTS}
	e.setType(typ, info)
	f.es = append(f.es, e)
	m.psi.rebuild = true
	return e
}

func (m *mux) onPAT(f *feed, b []byte) {
	s, _, err := ts.ParseSection(b)
	if err != nil || s.TableID != ts.TablePAT || !s.CurrentNext {
		return
	}
	if f.psi.progs, err = ts.ParsePAT(s, f.psi.progs[:0]); err != nil {
		return
	}
	for _, p := range f.psi.progs {
		if p.Number != 0 {
			if int(p.PID) != f.psi.pmtPID {
				f.psi.pmtPID = int(p.PID)
				f.psi.pmtR = ts.SectionReader{}
				f.psi.pmtRaw = f.psi.pmtRaw[:0]
			}
			return
		}
	}
}

func (m *mux) onPMT(f *feed, b []byte) {
	if f.psi.hasPMT && bytes.Equal(b, f.psi.pmtRaw) {
		return // ffmpeg repeats it every 100 ms
	}
	s, _, err := ts.ParseSection(b)
	if err != nil || s.TableID != ts.TablePMT || !s.CurrentNext {
		return
	}
	if err := ts.ParsePMT(s, &f.psi.pmt); err != nil {
		return
	}
	f.psi.pmtRaw = append(f.psi.pmtRaw[:0], b...)
	f.psi.hasPMT = true
	var keep [maxESPerFeed]*es
	n := 0
	for _, st := range f.psi.pmt.Streams {
		if st.PID < 0x20 || st.PID == ts.PIDNull || int(st.PID) == f.psi.pmtPID || n == len(keep) {
			continue
		}
		e := f.findES(st.PID)
		if e == nil {
			if e = m.newES(f, st.PID, st.Type, st.Info); e == nil {
				continue
			}
		} else if e.typ != st.Type || !bytes.Equal(e.info, st.Info) {
			e.setType(st.Type, st.Info)
		}
		e.pcr = e.pcr || st.PID == f.psi.pmt.PCRPID
		dup := false
		for _, k := range keep[:n] {
			dup = dup || k == e
		}
		if !dup {
			keep[n] = e
			n++
		}
	}
	f.es = append(f.es[:0], keep[:n]...)
	m.psi.rebuild = true
}
