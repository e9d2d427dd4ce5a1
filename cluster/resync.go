package cluster

import (
	"bytes"
	"slices"

	"github.com/vwlab/vw/ts"
)

// After a gap in a remote stream (messages lost between relays) the next
// bytes are the middle of some PES: a player fed them decodes garbage, and
// jsmpeg's MP2 decoder, handed a partial audio PES, stalls for seconds. So a
// receiving relay forwards nothing of that stream after a gap until a video
// PES that starts a keyframe (or, in a stream without video, an audio PES
// start), put behind the latest PAT and PMT; from there each other PID
// passes from its own next PES start on. A stream that starts on a relay
// mid-way (the relay began watching while it ran) is joined the same way.
//
// The PAT and PMT are followed all the time, packet by packet (a byte
// compare per PSI packet), so that the video PID and codec are known when a
// gap comes; everything else costs nothing until one does.

// maxPending bounds the packets held while a PES's keyframe verdict is not
// yet known (an H.264 keyframe's parameter sets before its first slice).
const maxPending = 256 << 10

// resync is the receiving side of one remote MPEG-TS stream.
type resync struct {
	// broken: a gap was seen and no keyframe since; nothing passes.
	broken bool
	// fixing: the keyframe passed; PIDs not in started wait for their
	// next PES start.
	fixing  bool
	started []uint16

	pat, pmt []byte // latest PAT, and PMT of its first program (a packet each)
	pmtPID   uint16
	es       []uint16 // elementary PIDs of the PMT
	video    uint16
	hasVideo bool
	family   ts.Family // of the video: how to find its keyframes

	probe   ts.KeyframeProbe
	pend    []byte // packets since the latest video PES start, verdict pending
	pendOn  bool
	scratch ts.PMT
	progs   []ts.Program
}

// gap marks the stream broken: nothing passes until a keyframe.
func (r *resync) gap() {
	r.broken, r.fixing = true, false
	r.pend, r.pendOn = r.pend[:0], false
	r.probe.Reset(r.family)
}

// filter returns what of pkts (whole packets) may be forwarded. Unbroken,
// that is pkts itself (copied false). Otherwise it is a new buffer with at
// bytes of room in front and the packets that pass after them, or nil if
// none does.
func (r *resync) filter(pkts []byte, at int) (out []byte, copied bool) {
	if !r.broken && !r.fixing {
		for i := 0; i+ts.PacketSize <= len(pkts); i += ts.PacketSize {
			r.track(pkts[i : i+ts.PacketSize])
		}
		return pkts, false
	}
	var dst []byte
	emit := func(p ...[]byte) {
		if dst == nil {
			dst = make([]byte, at, at+len(pkts)+len(r.pat)+len(r.pmt))
		}
		for _, b := range p {
			dst = append(dst, b...)
		}
	}
	for i := 0; i+ts.PacketSize <= len(pkts); i += ts.PacketSize {
		p := pkts[i : i+ts.PacketSize]
		pid := ts.PID(p)
		if pid == ts.PIDPAT || pid == r.pmtPID && r.pmtPID != 0 {
			r.track(p)
			if !r.broken {
				emit(p)
			}
			continue
		}
		if !r.broken {
			if r.pass(p, pid) {
				emit(p)
			}
			continue
		}
		if !r.key(p, pid) {
			continue
		}
		// The stream can be joined here: the tables first, then the
		// packets since the keyframe's PES began.
		r.broken, r.fixing = false, true
		r.started = append(r.started[:0], pid)
		emit(r.pat, r.pmt)
		held := r.pend
		if !r.pendOn {
			held = p
		}
		for j := 0; j+ts.PacketSize <= len(held); j += ts.PacketSize {
			if q := held[j : j+ts.PacketSize]; r.pass(q, ts.PID(q)) {
				emit(q)
			}
		}
		r.pend, r.pendOn = r.pend[:0], false
	}
	if dst == nil || len(dst) == at {
		return nil, true
	}
	return dst, true
}

// key follows a broken stream's packet p and reports whether the stream
// can be joined at it: the verdict on a keyframe came (the PES's packets
// are in pend), or, without video, an audio PES starts at p.
func (r *resync) key(p []byte, pid uint16) bool {
	switch {
	case r.pmt == nil:
		return false // no tables yet: no telling what p is
	case !r.hasVideo:
		return ts.PayloadUnitStart(p) && slices.Contains(r.es, pid)
	case pid != r.video:
		if r.pendOn {
			r.hold(p)
		}
		return false
	}
	if ts.PayloadUnitStart(p) {
		r.pend, r.pendOn = r.pend[:0], true
	}
	if r.pendOn {
		r.hold(p)
	}
	if r.family == ts.FamilyNone {
		// No way to read the pictures: trust the muxer's flag.
		r.pendOn = false
		return ts.PayloadUnitStart(p) && ts.RandomAccess(p)
	}
	switch r.probe.Packet(p) {
	case ts.Key:
		return true
	case ts.NotKey:
		r.pend, r.pendOn = r.pend[:0], false
	}
	return false
}

// hold keeps p while a PES's verdict is pending, within maxPending.
func (r *resync) hold(p []byte) {
	if len(r.pend)+len(p) > maxPending {
		r.pend, r.pendOn = r.pend[:0], false
		return
	}
	r.pend = append(r.pend, p...)
}

// pass reports whether p passes while the stream is being fixed: a PID
// passes from its first PES start on. Once every elementary PID has
// started, the stream is whole again.
func (r *resync) pass(p []byte, pid uint16) bool {
	if !slices.Contains(r.started, pid) {
		if !ts.PayloadUnitStart(p) {
			return false
		}
		r.started = append(r.started, pid)
	}
	for _, es := range r.es {
		if !slices.Contains(r.started, es) {
			return true
		}
	}
	r.fixing = false
	return true
}

// track follows the PAT and the PMT of its first program.
func (r *resync) track(p []byte) {
	pid := ts.PID(p)
	switch {
	case pid == ts.PIDPAT:
		if bytes.Equal(p, r.pat) {
			return
		}
		s, ok := section(p, ts.TablePAT)
		if !ok {
			return
		}
		progs, err := ts.ParsePAT(s, r.progs[:0])
		r.progs = progs
		if err != nil {
			return
		}
		r.pat = append(r.pat[:0], p...)
		for _, pr := range progs {
			if pr.Number != 0 && pr.PID != r.pmtPID {
				r.pmtPID, r.pmt = pr.PID, nil
			}
			if pr.Number != 0 {
				break
			}
		}
	case pid == r.pmtPID && pid != 0:
		if bytes.Equal(p, r.pmt) {
			return
		}
		s, ok := section(p, ts.TablePMT)
		if !ok || ts.ParsePMT(s, &r.scratch) != nil {
			return
		}
		r.pmt = append(r.pmt[:0], p...)
		r.es, r.hasVideo = r.es[:0], false
		for _, st := range r.scratch.Streams {
			r.es = append(r.es, st.PID)
			if !r.hasVideo && ts.KindOf(st.Type) == "video" {
				r.hasVideo, r.video, r.family = true, st.PID, ts.FamilyOf(st.Type)
			}
		}
		r.probe.Reset(r.family)
	}
}

// section parses the table of the given id that starts and ends in packet
// p.
func section(p []byte, table byte) (ts.Section, bool) {
	s, err := ts.PacketSection(p)
	return s, err == nil && s.TableID == table
}
