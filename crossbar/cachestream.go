package crossbar

import "github.com/vwlab/vw/ts"

// streamState follows a stream topic's bytes as far as its keyframe cache
// needs: whole packets out of messages cut anywhere, the PAT and PMT (which
// PID carries the video, how it is coded, which version is in force), and
// where each video PES starts and whether it starts a keyframe.
type streamState struct {
	from uint64 // the publisher of the latest message
	fed  uint64 // bytes of stream seen; positions count from the first

	unaligned bool // the publisher cut a message inside a packet once
	aligner   ts.Aligner
	scratch   []byte

	pat, pmt         ts.SectionReader
	emitPAT, emitPMT func([]byte)
	progs            []ts.Program
	table            ts.PMT
	pmtPID           int // -1 until a PAT names one
	version          int // of the PMT in force; -1 before one
	videoPID         uint16
	family           ts.Family // of the video; FamilyNone when there is none
	probe            ts.KeyframeProbe

	pending  bool   // a video PES has started and its verdict is to come
	pesAt    uint64 // where it started
	pesExact bool   // whether pesAt is known exactly (no bytes skipped)
	ev       event  // set by the table callbacks
}

// event is what a packet changed for the cache.
type event uint8

const (
	nothing   event = iota
	newTables       // a new PMT (version, video PID or its family), or PAT
	keyframe        // the PES that started at pesAt starts a keyframe
)

// restart forgets the stream, for one that starts afresh (another
// publisher). Positions go on counting.
func (s *streamState) restart() {
	s.unaligned = false
	s.aligner.Reset()
	s.pat, s.pmt = ts.SectionReader{}, ts.SectionReader{}
	s.pmtPID, s.version, s.family = -1, -1, ts.FamilyNone
	s.probe.Reset(ts.FamilyNone)
	s.pending = false
}

// packets returns the whole packets that data (the bytes from position at
// on) completes, where the first of them starts, and whether that position
// is exact: a publisher that sends whole packets is read in place; one
// that does not goes through an Aligner from then on, and a position is
// unknown where the Aligner skipped garbage. fed must already count data.
func (s *streamState) packets(data []byte, at uint64) (pkts []byte, start uint64, exact bool) {
	if !s.unaligned && aligned(data) {
		return data, at, true
	}
	s.unaligned = true
	skipped := s.aligner.Skipped()
	s.scratch = s.aligner.Append(s.scratch[:0], data)
	end := s.fed - uint64(s.aligner.Buffered())
	return s.scratch, end - uint64(len(s.scratch)), s.aligner.Skipped() == skipped
}

// packet follows one packet, which starts at position pos.
func (s *streamState) packet(p []byte, pos uint64, exact bool) event {
	if s.emitPAT == nil {
		s.emitPAT, s.emitPMT = s.onPAT, s.onPMT
	}
	s.ev = nothing
	switch pid := ts.PID(p); {
	case pid == ts.PIDPAT:
		s.pat.Push(p, s.emitPAT)
	case s.pmtPID >= 0 && int(pid) == s.pmtPID:
		s.pmt.Push(p, s.emitPMT)
	case s.family != ts.FamilyNone && pid == s.videoPID:
		if ts.PayloadUnitStart(p) {
			s.pesAt, s.pesExact, s.pending = pos, exact, true
		}
		switch s.probe.Packet(p) {
		case ts.Key:
			if s.pending && s.pesExact {
				s.ev = keyframe
			}
			s.pending = false
		case ts.NotKey:
			s.pending = false
		}
	}
	return s.ev
}

// neededFrom is the earliest position the stream may still need: bytes the
// Aligner holds for its next packet, and a video PES whose verdict is to
// come.
func (s *streamState) neededFrom() uint64 {
	from := s.fed - uint64(s.aligner.Buffered())
	if s.pending {
		from = min(from, s.pesAt)
	}
	return from
}

func (s *streamState) onPAT(b []byte) {
	sec, _, err := ts.ParseSection(b)
	if err != nil {
		return
	}
	if s.progs, err = ts.ParsePAT(sec, s.progs[:0]); err != nil {
		return
	}
	pid := -1
	for _, p := range s.progs {
		if p.Number != 0 {
			pid = int(p.PID)
			break
		}
	}
	if pid != s.pmtPID {
		s.pmtPID, s.pmt = pid, ts.SectionReader{}
		s.version, s.family, s.pending = -1, ts.FamilyNone, false
		s.ev = newTables
	}
}

func (s *streamState) onPMT(b []byte) {
	sec, _, err := ts.ParseSection(b)
	if err != nil || ts.ParsePMT(sec, &s.table) != nil {
		return
	}
	family, pid := ts.FamilyNone, uint16(0)
	for _, st := range s.table.Streams {
		if ts.IsVideo(st.Type) {
			family, pid = ts.FamilyOf(st.Type), st.PID
			break
		}
	}
	if int(sec.Version) == s.version && family == s.family && pid == s.videoPID {
		return
	}
	s.version, s.family, s.videoPID = int(sec.Version), family, pid
	s.probe.Reset(family)
	s.pending = false
	s.ev = newTables
}

// aligned reports whether b is whole packets, each starting with the sync
// byte.
func aligned(b []byte) bool {
	if len(b)%ts.PacketSize != 0 {
		return false
	}
	for i := 0; i < len(b); i += ts.PacketSize {
		if b[i] != ts.SyncByte {
			return false
		}
	}
	return true
}
