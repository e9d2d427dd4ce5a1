package rwc

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/reconws"
	"github.com/vwlab/vw/ts"
)

// Shedding keeps a destination live on a link slower than its stream.
//
// A destination knows how far behind its connection is: the client's
// backlog (queued and unacknowledged bytes) over the rate it drains at,
// the stream's own, or the link's once the link has shown it is slower. A
// video PES that would leave later than the delay bound allows is not
// sent, nor is the rest of its GOP: the destination drops video up to a
// keyframe, and meanwhile sends audio, PSI and the keyframes the link has
// room for. It decides only where a PES starts, so no PES is ever cut; it
// rewrites the continuity counters of the PIDs it drops from, so the
// stream stays continuous; and it keeps each dropped packet's PCR in a
// packet of its own, so the clock keeps coming.

const (
	// episodeQuiet is how long a destination must go without dropping
	// anything for its shedding to count as over: on a link a little
	// slower than the stream, whole GOPs get through between dropped
	// ones, and that is one episode, not one a second.
	episodeQuiet = 3 * time.Second
	// holdPackets bounds how many packets of a video PES are held back
	// while it is unknown whether it starts a keyframe; past that it is
	// taken for a frame that does not.
	holdPackets = 8
	// headBytes is how much of a PES start is gathered to tell.
	headBytes = 2 << 10
	// pcrGap is how far apart, in 27 MHz ticks, the PCRs of dropped
	// packets are kept: 80 ms, inside the 100 ms the standard allows, and
	// far fewer packets than an encoder's every 20 ms on a link that has
	// no room to spare.
	pcrGap = 80 * 27000
)

// shedder filters one destination's stream. The pump owns it.
type shedder struct {
	maxDelay time.Duration // 0: never shed
	log      *logrus.Entry
	d        *dest // counters for Stats

	in     rateMeter
	link   linkMeter
	client backlogger // the one link measures

	pat   ts.SectionReader
	progs []ts.Program
	pmts  map[uint16]*ts.SectionReader
	pmt   ts.PMT
	pids  map[uint16]*pidState // video PIDs, and any PID once rewritten
	memo  pidMemo              // the last PID looked up in pmts and pids

	episode         bool // shedding, until nothing was dropped for episodeQuiet
	epGOPs, epBytes uint64
	lastDrop        time.Time

	// The message being filtered.
	msgs    uint64 // messages filtered
	now     time.Time
	src     []byte
	same    int    // src[:same] leaves as it is
	out     []byte // nil while nothing changed
	backlog int64  // the client's backlog before this message
	drain   float64
}

// What a PID carries, as far as shedding goes.
const (
	carriesOther = iota // never dropped: PSI, data, video of an unknown codec
	carriesVideo        // dropped from first, up to keyframes
	carriesAudio        // whole PES dropped only when even audio is late
)

// pidState is what the shedder knows of one PID.
type pidState struct {
	carries int
	codec   ts.Family
	cc      ts.Continuity // payload packets dropped, mod 16: off every CC
	lastPCR uint64        // the latest PCR that left on this PID, plus one
	listed  bool          // in the latest PMT

	// The PES passing now.
	deciding bool   // its first packets are held until its kind is known
	pending  []held // those packets
	head     []byte // its first bytes
	send     bool
	key      bool
	size     int

	dropping   bool // until a keyframe fits
	gopDropped bool // some of the current GOP was dropped
	keySize    float64
	frameSize  float64
}

func newShedder(d *dest) *shedder {
	return &shedder{d: d, pmts: map[uint16]*ts.SectionReader{}, pids: map[uint16]*pidState{}}
}

// backlogger is a connection that can say how far behind it is: a
// reconws.Client.
type backlogger interface{ Backlog() reconws.Backlog }

// filter returns what of in goes to c: in itself when nothing changes, a
// prefix of it, or a new buffer. in is never written.
func (s *shedder) filter(in []byte, c backlogger, now time.Time) []byte {
	s.in.add(now, len(in))
	if c != s.client {
		s.client = c
		s.link.reset()
	}
	rate := s.in.rate(now)
	b := c.Backlog()
	s.link.sample(now, b, int64(rate/20)) // 50 ms of the stream queued
	s.backlog, s.drain = b.Bytes(), rate
	if lr, ok := s.link.rate(now); ok && lr < rate {
		s.drain = lr
	}
	s.d.behind.Store(int64(s.delay(0)))
	if len(in) == 0 || len(in)%ts.PacketSize != 0 || in[0] != ts.SyncByte {
		return in
	}
	s.msgs++
	s.now, s.src, s.same, s.out = now, in, 0, nil
	for off := 0; off < len(in); off += ts.PacketSize {
		s.packet(in[off:off+ts.PacketSize], off)
	}
	out := s.out
	if out == nil {
		out = in[:s.same]
	}
	s.src, s.out = nil, nil
	return out
}

// delay is how long the connection would take to deliver what it holds,
// what this message has let through so far and extra bytes more.
func (s *shedder) delay(extra float64) time.Duration {
	if s.drain <= 0 {
		return 0
	}
	sent := s.same // this message's bytes so far
	if s.out != nil {
		sent = len(s.out)
	}
	held := float64(s.backlog) + float64(sent) + extra
	return time.Duration(held / s.drain * float64(time.Second))
}

func (s *shedder) packet(p []byte, off int) {
	pid := ts.PID(p)
	s.lookup(pid)
	if pid == ts.PIDPAT {
		s.pat.Push(p, s.onPAT)
	} else if r := s.memo.pmt; r != nil {
		r.Push(p, s.onPMT)
		s.lookup(pid) // the PMT may have changed what a PID carries
	}
	v := s.memo.v
	if v == nil || v.carries == carriesOther {
		s.emit(v, p, off)
		return
	}
	if ts.PayloadUnitStart(p) && ts.HasPayload(p) {
		if v.deciding {
			s.decide(v, false)
		}
		v.endPES()
		v.head, v.size = v.head[:0], 0
		if v.carries == carriesVideo {
			v.deciding = true
		} else {
			v.send = s.chooseAudio(v)
		}
	}
	v.size += ts.PacketSize
	if !v.deciding {
		if v.send {
			s.emit(v, p, off)
		} else {
			s.drop(v, p, off)
		}
		return
	}
	v.pending = append(v.pending, held{p, off, s.msgs})
	if po, ok := ts.PayloadOffset(p); ok && len(v.head) < headBytes {
		v.head = append(v.head, p[po:]...)
	}
	if key, sure := v.kind(); sure || len(v.pending) >= holdPackets {
		s.decide(v, key)
	}
}

// pidMemo is what pmts and pids hold for one PID. A message is mostly
// packets of one PID in a row, so remembering the last answer saves two map
// lookups a packet; onPAT and onPMT forget it when they add to the maps.
type pidMemo struct {
	ok  bool
	pid uint16
	pmt *ts.SectionReader
	v   *pidState
}

func (s *shedder) lookup(pid uint16) {
	if !s.memo.ok || s.memo.pid != pid {
		s.memo = pidMemo{ok: true, pid: pid, pmt: s.pmts[pid], v: s.pids[pid]}
	}
}

// kind tells whether the PES being gathered starts a keyframe, if its
// first bytes are enough to tell.
func (v *pidState) kind() (key, sure bool) {
	h, err := ts.ParsePES(v.head)
	switch {
	case err == ts.ErrShort || err == nil && len(v.head) < h.DataOffset:
		return false, false
	case err != nil:
		return false, true
	}
	return ts.Keyframe(v.codec, v.head[h.DataOffset:])
}

// endPES learns the size of the PES that just ended, as its kind's
// estimate for the next one.
func (v *pidState) endPES() {
	if v.size == 0 {
		return
	}
	if v.key {
		v.keySize = float64(v.size)
	} else if v.frameSize == 0 {
		v.frameSize = float64(v.size)
	} else {
		v.frameSize += (float64(v.size) - v.frameSize) / 8
	}
}

func (v *pidState) estimate(key bool) float64 {
	switch {
	case !key:
		return v.frameSize
	case v.keySize > 0:
		return v.keySize
	}
	return 4 * v.frameSize
}

// decide settles whether the PES being gathered leaves, and lets its held
// packets go or drops them.
func (s *shedder) decide(v *pidState, key bool) {
	v.deciding, v.key = false, key
	v.send = s.choose(v, key)
	for i, q := range v.pending {
		off := q.off
		if q.msg != s.msgs {
			off = -1 // not in this message
		}
		if v.send {
			s.emit(v, q.p, off)
		} else {
			s.drop(v, q.p, off)
		}
		v.pending[i] = held{}
	}
	v.pending = v.pending[:0]
}

// held is a packet held back, where it was in which message.
type held struct {
	p   []byte
	off int
	msg uint64
}

// chooseAudio is the last resort, at the start of an audio PES: when even
// without video the connection cannot deliver it well within the bound,
// audio goes too, a whole PES at a time. An eighth of the bound is left
// for what is never dropped (PSI, PCRs).
func (s *shedder) chooseAudio(v *pidState) bool {
	if s.maxDelay <= 0 || s.delay(v.frameSize) <= s.maxDelay*7/8 {
		return true
	}
	s.lastDrop = s.now
	if !s.episode {
		s.start()
	}
	s.d.skippedAudio.Add(1)
	return false
}

// choose is the shedding rule, at the start of a video PES.
func (s *shedder) choose(v *pidState, key bool) bool {
	if key {
		v.gopDropped = false
	}
	send := true
	if s.maxDelay > 0 {
		// Pictures go while they would arrive within half the bound:
		// the stream stays as live as the link allows, and the other
		// half is margin for what cannot be seen from here (the path
		// past the socket, estimates that are off, bursts).
		fits := s.delay(v.estimate(key)) <= s.maxDelay/2
		switch {
		case !v.dropping:
			v.dropping, send = !fits, fits
		case key && (fits || s.delay(0) <= s.maxDelay/4 && s.delay(v.estimate(true)) <= s.maxDelay*3/4):
			// A keyframe that fits, or that can start at once on a
			// drained link and still arrive well within the bound:
			// the pictures after it can be decoded again, and go
			// while they fit.
			v.dropping = false
		default:
			send = false
		}
	}
	switch {
	case !send:
		s.lastDrop = s.now
		if !s.episode {
			s.start()
		}
		if !v.gopDropped {
			v.gopDropped = true
			s.epGOPs++
			s.d.skippedGOPs.Add(1)
		}
	case s.episode && s.now.Sub(s.lastDrop) >= episodeQuiet:
		s.stop()
	}
	return send
}

func (s *shedder) start() {
	s.episode, s.epGOPs, s.epBytes = true, 0, 0
	s.d.shedding.Store(true)
	lr, _ := s.link.rate(s.now)
	s.log.WithFields(logrus.Fields{
		"behind": s.delay(0).Round(time.Millisecond), "max_delay": s.maxDelay,
		"stream_kbps": int(s.in.rate(s.now) * 8 / 1000), "link_kbps": int(lr * 8 / 1000),
	}).Info("shedding video: the link is slower than the stream; sending audio and keyframes first")
}

func (s *shedder) stop() {
	s.episode = false
	s.d.shedding.Store(false)
	s.log.WithFields(logrus.Fields{"gops": s.epGOPs, "bytes": s.epBytes}).
		Info("stopped shedding: the link keeps up again")
}

// emit lets a packet go, its continuity counter rewritten if its PID has
// lost packets; off is its place in the message, -1 if it was held.
func (s *shedder) emit(v *pidState, p []byte, off int) {
	if v != nil && v.carries != carriesOther {
		if base, ext, ok := ts.PCR(p); ok {
			v.lastPCR = ts.PCR27(base, ext) + 1
		}
	}
	if v == nil || v.cc == 0 {
		if s.out == nil && off == s.same {
			s.same += ts.PacketSize
			return
		}
		s.grow()
		s.out = append(s.out, p...)
		return
	}
	s.grow()
	n := len(s.out)
	s.out = append(s.out, p...)
	ts.SetCC(s.out[n:], ts.CC(p)-v.cc)
}

// drop drops a packet of a video PES. One without payload (adaptation
// only) carries no frame and goes; one with a PCR leaves its PCR behind.
func (s *shedder) drop(v *pidState, p []byte, off int) {
	if !ts.HasPayload(p) {
		s.emit(v, p, off)
		return
	}
	v.cc = v.cc.Next()
	s.epBytes += ts.PacketSize
	s.d.skippedBytes.Add(ts.PacketSize)
	base, ext, ok := ts.PCR(p)
	if pcr := ts.PCR27(base, ext); ok && (v.lastPCR == 0 || pcr+1 < v.lastPCR || pcr+1-v.lastPCR >= pcrGap || ts.Discontinuity(p)) {
		v.lastPCR = pcr + 1
		s.grow()
		s.out = appendPCROnly(s.out, p, ts.CC(p)-v.cc)
	}
}

// grow starts the new buffer with what has passed unchanged so far.
func (s *shedder) grow() {
	if s.out == nil {
		s.out = append(make([]byte, 0, len(s.src)+ts.PacketSize), s.src[:s.same]...)
	}
}

// appendPCROnly appends a packet of p's PID that carries only p's PCR:
// adaptation field, no payload, so its continuity counter cc is that of
// the PID's previous packet.
func appendPCROnly(dst, p []byte, cc ts.Continuity) []byte {
	n := len(dst)
	dst = append(dst, p[:12]...) // header, adaptation length and flags, PCR
	q := dst[n:]
	q[1] &^= 0xc0 // no transport error, no payload unit start
	q[3] = 0x20 | byte(cc)&0x0f
	q[4] = 183
	q[5] = 0x10 | p[5]&0x80 // the PCR, and a discontinuity the source marked
	for range ts.PacketSize - 12 {
		dst = append(dst, 0xff)
	}
	return dst
}

func (s *shedder) onPAT(sec []byte) {
	t, _, err := ts.ParseSection(sec)
	if err != nil || t.TableID != ts.TablePAT {
		return
	}
	if s.progs, err = ts.ParsePAT(t, s.progs[:0]); err != nil {
		return
	}
	for _, pr := range s.progs {
		if pr.Number != 0 && s.pmts[pr.PID] == nil {
			s.pmts[pr.PID] = new(ts.SectionReader)
			s.memo.ok = false
		}
	}
}

// onPMT learns which PIDs carry video it can shed from (a codec whose
// keyframes it can find) and which carry audio. A PID that leaves the PMT
// keeps its counter offset, in case it comes back.
func (s *shedder) onPMT(sec []byte) {
	t, _, err := ts.ParseSection(sec)
	if err != nil || t.TableID != ts.TablePMT || ts.ParsePMT(t, &s.pmt) != nil {
		return
	}
	for _, v := range s.pids {
		v.listed = false
	}
	for _, st := range s.pmt.Streams {
		carries, codec := carriesOther, ts.FamilyOf(st.Type)
		switch {
		case ts.IsVideo(st.Type):
			carries = carriesVideo
		case ts.IsAudioType(st.Type):
			carries = carriesAudio
		default:
			continue
		}
		v := s.pids[st.PID]
		if v == nil {
			v = &pidState{send: true}
			s.pids[st.PID] = v
			s.memo.ok = false
		}
		v.listed, v.codec = true, codec
		if v.carries != carries {
			s.settle(v)
			v.carries = carries
		}
	}
	for _, v := range s.pids {
		if !v.listed && v.carries != carriesOther {
			s.settle(v)
			v.carries = carriesOther
		}
	}
}

// settle finishes what a PID was doing before it changes what it carries:
// held packets go, and its packets pass from now on.
func (s *shedder) settle(v *pidState) {
	if v.deciding {
		s.decide(v, false)
	}
	v.send, v.dropping = true, false
}
