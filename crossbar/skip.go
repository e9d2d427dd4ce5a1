package crossbar

import (
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/ts"
)

// A viewer whose link is slower than its stream skips: the watcher (see
// behind.go) raises its level, its messages stop going straight to its
// socket and come through its pump, and the pump's skipper writes only
// what of them goes:
//
//   - video is dropped from the start of the next video PES (the one in
//     progress is finished, so no PES is cut) up to a keyframe: the newest
//     one, the keyframe cache's, at the exact message and byte where its
//     PES starts; from there the stream's own messages go out again, the
//     same buffers every other viewer gets;
//   - audio, PAT/PMT and everything else keep going, unless even audio
//     cannot arrive in time (level 2): then audio PES are dropped whole too;
//   - where packets were dropped from a PID, the next packet that goes is
//     preceded by an adaptation-only packet flagging a discontinuity, whose
//     continuity counter leads into it: the stream stays continuous to a
//     checker, and jsmpeg skips payload-less packets.
//
// The PAT/PMT are never dropped, so a viewer resuming at a keyframe already
// holds the tables in force: sending the cache's copy again would repeat
// their continuity counters.

// keyMark is where a stream's newest keyframe starts: at byte off of the
// published message m. The keyframe cache sets it, whether or not the GOP
// fits its budget.
type keyMark struct {
	m   *hub.Message
	off int
}

// What a PID carries, from the stream_id of its latest PES.
const (
	carriesOther = iota // PSI, data, a PES in progress when skipping began
	carriesVideo
	carriesAudio
)

// pidFilter is what a skipper knows of one PID.
type pidFilter struct {
	pid     uint16
	carries uint8
	drop    bool   // its current PES is being dropped
	gap     bool   // payload was dropped since the last packet that went
	seen    uint64 // the skipper's message count when it last appeared
}

// staleAfter is how many messages a PID may be absent before a skipper
// forgets it: a muted feed's PID must not keep a viewer skipping.
const staleAfter = 64

// skipper is a viewer's filter while it skips. Its pump owns it.
type skipper struct {
	video bool // video PES go: false from a skip until a keyframe
	audio bool // audio PES go: false at level 2
	pids  []pidFilter
	msgs  uint64

	carry   []byte // the start of a packet the last message cut
	scratch []byte
	fresh   bool // nothing taken since the skip began: where packets start is to be found

	cur []byte         // packets that go, copied, not yet a message
	out []*hub.Message // what to write

	// This batch's account: payload bytes dropped and added (markers),
	// and GOPs that lost video.
	dropped, added int
	gops           int
	gopHit         bool // video of the current GOP was dropped
}

func newSkipper() *skipper { return &skipper{video: true, audio: true, fresh: true} }

// take filters one message from the queue. key is the newest keyframe;
// level the watcher's verdict (0: resume at a keyframe, 1: skip video,
// 2: skip audio too).
func (k *skipper) take(m *hub.Message, key *keyMark, level int32) {
	k.msgs++
	if m.Text {
		k.flush()
		k.out = append(k.out, m)
		return
	}
	if level > 0 {
		k.video = false
	}
	k.audio = level < 2
	if key == nil || key.m != m || k.video {
		k.span(m, m.Data)
		return
	}
	// The newest keyframe starts in this message.
	k.span(m, m.Data[:key.off])
	k.gopHit = false
	if level == 0 {
		k.video = true
	}
	k.span(m, m.Data[key.off:])
}

// span filters data, part or all of m's payload.
func (k *skipper) span(m *hub.Message, data []byte) {
	pkts, shared := data, len(k.carry) == 0 && aligned(data)
	if !shared {
		var lead []byte
		lead, pkts = k.packets(data)
		k.cur = append(k.cur, lead...)
	}
	k.fresh = k.fresh && len(data) == 0
	same := shared // data leaves as it is, if nothing changes
	for i := 0; i+ts.PacketSize <= len(pkts); i += ts.PacketSize {
		p := pkts[i : i+ts.PacketSize]
		pass, mark := k.packet(p)
		if same && pass && (!mark || i == 0) {
			if mark {
				// Ahead of the shared buffer, in the message before it.
				k.cur = appendMarker(k.cur, p)
				k.added += ts.PacketSize
			}
			continue
		}
		if same {
			same = false
			k.cur = append(k.cur, pkts[:i]...)
		}
		if mark {
			k.cur = appendMarker(k.cur, p)
			k.added += ts.PacketSize
		}
		if pass {
			k.cur = append(k.cur, p...)
		} else {
			k.dropped += ts.PacketSize
		}
	}
	if !same || len(data) == 0 {
		return
	}
	k.flush()
	if len(data) == len(m.Data) {
		k.out = append(k.out, m) // its frame, as every viewer gets it
	} else {
		k.out = append(k.out, &hub.Message{Data: data, From: m.From})
	}
}

// packets returns the whole packets that data completes, in a scratch
// buffer, and keeps the start of one it cuts for the next. A publisher that
// cuts its messages inside packets still sends a stream of whole packets;
// bytes that are not (a lost sync byte) are dropped. The first message of
// a skip may start inside a packet whose start the viewer already has:
// lead is that packet's rest, which goes as it is.
func (k *skipper) packets(data []byte) (lead, pkts []byte) {
	b := append(append(k.scratch[:0], k.carry...), data...)
	n, i := 0, 0
	if k.fresh {
		i = syncAt(b)
		lead = b[:i]
		n = i
	}
	for i+ts.PacketSize <= len(b) {
		if b[i] != ts.SyncByte {
			i++
			k.dropped++
			continue
		}
		n += copy(b[n:], b[i:i+ts.PacketSize])
		i += ts.PacketSize
	}
	for i < len(b) && b[i] != ts.SyncByte {
		i++
		k.dropped++
	}
	k.carry = append(k.carry[:0], b[i:]...)
	k.scratch = b
	return lead, b[len(lead):n]
}

// syncAt returns where the first packet of b starts: at a sync byte
// followed by two more at packet steps, as far as b shows.
func syncAt(b []byte) int {
	for i := range b {
		if b[i] == ts.SyncByte &&
			(i+ts.PacketSize >= len(b) || b[i+ts.PacketSize] == ts.SyncByte) &&
			(i+2*ts.PacketSize >= len(b) || b[i+2*ts.PacketSize] == ts.SyncByte) {
			return i
		}
	}
	return len(b)
}

// packet decides one packet: whether it goes, and whether a marker must go
// before it.
func (k *skipper) packet(p []byte) (pass, mark bool) {
	pid := ts.PID(p)
	if pid == ts.PIDNull {
		return false, false // stuffing: no room for it on this link
	}
	f := k.filter(pid)
	payload := ts.HasPayload(p)
	if payload && ts.PayloadUnitStart(p) {
		f.carries = carriesOf(p)
		switch f.carries {
		case carriesVideo:
			f.drop = !k.video
		case carriesAudio:
			f.drop = !k.audio
		default:
			f.drop = false
		}
	}
	if f.drop {
		if payload {
			f.gap = true
			if f.carries == carriesVideo && !k.gopHit {
				k.gopHit = true
				k.gops++
			}
		}
		return false, false
	}
	mark, f.gap = f.gap, false
	return true, mark
}

// filter returns the state of pid, new if it was not seen (or was
// forgotten), and forgets PIDs gone quiet.
func (k *skipper) filter(pid uint16) *pidFilter {
	for i := range k.pids {
		if f := &k.pids[i]; f.pid == pid {
			f.seen = k.msgs
			return f
		}
	}
	kept := k.pids[:0]
	for _, f := range k.pids {
		if k.msgs-f.seen < staleAfter {
			kept = append(kept, f)
		}
	}
	k.pids = append(kept, pidFilter{pid: pid, seen: k.msgs})
	return &k.pids[len(k.pids)-1]
}

// carriesOf tells what the PES a packet starts carries.
func carriesOf(p []byte) uint8 {
	off, ok := ts.PayloadOffset(p)
	if !ok || off+4 > ts.PacketSize {
		return carriesOther
	}
	pl := p[off:]
	if pl[0] != 0 || pl[1] != 0 || pl[2] != 1 {
		return carriesOther
	}
	switch id := pl[3]; {
	case ts.IsVideoStreamID(id):
		return carriesVideo
	case ts.IsAudioStreamID(id):
		return carriesAudio
	}
	return carriesOther
}

// appendMarker appends an adaptation-only packet on p's PID that flags a
// discontinuity, with the continuity counter that p follows.
func appendMarker(dst, p []byte) []byte {
	cc := ts.CC(p)
	if ts.HasPayload(p) {
		cc = (cc - 1) & 0x0f
	}
	n := len(dst)
	dst = append(dst, ts.SyncByte, p[1]&0x1f, p[2], 0x20|cc, ts.PacketSize-5, 0x80)
	for len(dst) < n+ts.PacketSize {
		dst = append(dst, 0xff)
	}
	return dst
}

// flush makes the copied packets a message.
func (k *skipper) flush() {
	if len(k.cur) == 0 {
		return
	}
	k.out = append(k.out, &hub.Message{Data: k.cur})
	k.cur = nil
}

// done reports whether the viewer is back to the stream as published: video
// resumed, nothing being dropped, no packet cut in two waiting.
func (k *skipper) done() bool {
	if !k.video || !k.audio || len(k.carry) > 0 {
		return false
	}
	for _, f := range k.pids {
		if (f.drop || f.gap) && k.msgs-f.seen < staleAfter {
			return false
		}
	}
	return true
}

// reset readies a done skipper for the next skip: PIDs and alignment are
// learnt afresh then.
func (k *skipper) reset() {
	k.pids = k.pids[:0]
	k.gopHit = false
	k.fresh = true
}
