package crossbar

import (
	"time"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/sockq"
	"github.com/vwlab/vw/ts"
)

// A viewer whose link is slower than its stream skips: the watcher (see
// behind.go) holds it, its messages stop going straight to its socket and
// come through its pump, and the pump's skipper writes only what of them
// can arrive in time. It decides where each PES starts, from how long the
// bytes ahead of that start (unacknowledged in the socket, or before it in
// the batch being written) take to drain at the link's rate:
//
//   - a video PES that would start later than skipAt of the bound is
//     dropped, with the rest of its GOP: video goes again at a keyframe
//     (the newest, the keyframe cache's, at the exact message and byte
//     where its PES starts) that would start within resumeBelow; from there
//     the stream's own messages go out again, the same buffers every other
//     viewer gets;
//   - audio PES go unless even they would wait longer than audioOff of the
//     bound for the link; then they are dropped whole;
//   - PAT/PMT and everything else always go;
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
	video bool // video PES go: false from a dropped one to a keyframe
	pids  []pidFilter
	msgs  uint64

	// How late a PES starting now would arrive: the age of its message
	// (now less its At, on the relay's clock) and the time what is ahead
	// of it takes to drain: ahead bytes ahead of this batch, at drain
	// bytes per second (0: unknown, everything goes). bound is the delay
	// bound. The pump sets them per batch.
	now   int64
	age   time.Duration
	ahead float64
	drain float64
	bound time.Duration
	key   bool // the next video PES is the newest keyframe

	carry   []byte // the start of a packet the last message cut
	scratch []byte

	cur []byte         // packets that go, copied, not yet a message
	out []*hub.Message // what to write

	// This batch's account: bytes that go, payload bytes dropped and added
	// (markers), GOPs that lost video, audio PES dropped.
	sent           int
	dropped, added int
	gops, audioPES int
	gopHit         bool // video of the current GOP was dropped
}

func newSkipper() *skipper { return &skipper{video: true} }

// take filters one message from the queue; key is the stream's newest
// keyframe.
func (k *skipper) take(m *hub.Message, key *keyMark) {
	k.msgs++
	k.age = 0
	if m.At != 0 {
		k.age = time.Duration(max(k.now-m.At, 0))
	}
	if m.Text {
		k.flush()
		k.out = append(k.out, m)
		k.sent += len(m.Data)
		return
	}
	if key == nil || key.m != m {
		k.span(m, m.Data)
		return
	}
	// The newest keyframe starts in this message.
	k.span(m, m.Data[:key.off])
	k.gopHit, k.key = false, true
	k.span(m, m.Data[key.off:])
	k.key = false
}

// queued is how long what is ahead of a PES starting now takes to drain.
func (k *skipper) queued() time.Duration {
	if k.drain <= 0 {
		return 0
	}
	return time.Duration((k.ahead + float64(k.sent+len(k.cur))) / k.drain * float64(time.Second))
}

// within reports whether a PES starting now would arrive within the given
// fraction of the bound: its message's age and the time it waits.
func (k *skipper) within(f float64) bool {
	return k.age+k.queued() <= time.Duration(f*float64(k.bound))
}

// span filters data, part or all of m's payload.
func (k *skipper) span(m *hub.Message, data []byte) {
	switch {
	case len(data) == 0:
	case len(k.carry) == 0 && aligned(data):
		k.spanShared(m, data)
	case len(k.carry) == 0 && !mostlyPackets(data):
		k.pass(m, data) // not TS: nothing to decide
	default:
		k.spanCopied(data)
	}
}

// pass sends data, part or all of m's payload, as it is.
func (k *skipper) pass(m *hub.Message, data []byte) {
	k.flush()
	k.sent += len(data)
	if len(data) == len(m.Data) {
		k.out = append(k.out, m) // its frame, as every viewer gets it
	} else {
		k.out = append(k.out, &hub.Message{Data: data, From: m.From})
	}
}

// mostlyPackets reports whether at least half of b lies in packets.
func mostlyPackets(b []byte) bool {
	n := 0
	for i := 0; i+ts.PacketSize <= len(b); {
		if b[i] == ts.SyncByte && (i+ts.PacketSize == len(b) || b[i+ts.PacketSize] == ts.SyncByte) {
			n += ts.PacketSize
			i += ts.PacketSize
			continue
		}
		i++
	}
	return 2*n >= len(b)
}

// spanShared filters whole packets: they leave as they are, in m's own
// buffer, unless one is dropped.
func (k *skipper) spanShared(m *hub.Message, data []byte) {
	for i := 0; i < len(data); i += ts.PacketSize {
		p := data[i : i+ts.PacketSize]
		pass, mark := k.packet(p)
		if pass && (!mark || i == 0) {
			if mark {
				// Ahead of the shared buffer, in the message before it.
				k.cur = appendMarker(k.cur, p)
				k.added += ts.PacketSize
			}
			continue
		}
		k.cur = append(k.cur, data[:i]...)
		k.copyPacket(p, pass, mark)
		for i += ts.PacketSize; i < len(data); i += ts.PacketSize {
			p := data[i : i+ts.PacketSize]
			pass, mark := k.packet(p)
			k.copyPacket(p, pass, mark)
		}
		return
	}
	k.pass(m, data)
}

// spanCopied filters a stream cut inside packets: whole packets as they
// complete, the start of one cut short kept for the next message. Bytes
// that are not packets (the rest of one whose start the viewer already
// has, when a skip begins; garbage; a stream that is not TS at all) go as
// they are: the skipper drops only what it understands.
func (k *skipper) spanCopied(data []byte) {
	b := append(append(k.scratch[:0], k.carry...), data...)
	k.carry = k.carry[:0]
	for i := 0; i < len(b); {
		if !packetAt(b, i) {
			j := i + 1
			for j < len(b) && !packetAt(b, j) {
				j++
			}
			k.cur = append(k.cur, b[i:j]...)
			i = j
			continue
		}
		if len(b)-i < ts.PacketSize {
			k.carry = append(k.carry, b[i:]...)
			break
		}
		p := b[i : i+ts.PacketSize]
		pass, mark := k.packet(p)
		k.copyPacket(p, pass, mark)
		i += ts.PacketSize
	}
	k.scratch = b
}

// packetAt reports whether a packet starts at b[i]: a sync byte, and two
// more at packet steps as far as b shows.
func packetAt(b []byte, i int) bool {
	return b[i] == ts.SyncByte &&
		(i+ts.PacketSize >= len(b) || b[i+ts.PacketSize] == ts.SyncByte) &&
		(i+2*ts.PacketSize >= len(b) || b[i+2*ts.PacketSize] == ts.SyncByte)
}

// copyPacket copies p, decided, into the message being built.
func (k *skipper) copyPacket(p []byte, pass, mark bool) {
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
			switch {
			case k.key && !k.video:
				k.video = k.within(resumeBelow)
			case k.video:
				k.video = k.within(skipAt)
			}
			k.key = false
			f.drop = !k.video
		case carriesAudio:
			// Only the link counts: audio that waited for a busy relay
			// is late whatever goes after it, and is small.
			f.drop = k.queued() > time.Duration(audioOff*float64(k.bound))
			if f.drop {
				k.audioPES++
			}
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
	dst = append(dst, ts.SyncByte, p[1]&0x1f, p[2], 0x20|byte(cc), ts.PacketSize-5, 0x80)
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
	k.sent += len(k.cur)
	k.cur = nil
}

// done reports whether the viewer is back to the stream as published: video
// resumed, nothing being dropped, no packet cut in two waiting.
func (k *skipper) done() bool {
	if !k.video || len(k.carry) > 0 {
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
}

// writeQueued writes m, taken from the queue, and what is queued behind it:
// as it came, or through the skipper while the viewer is held.
func (c *client) writeQueued(m *hub.Message) error {
	if !c.shed.held.Load() {
		return c.write(m)
	}
	return c.writeSkipping(m)
}

// writeSkipping is write for a held viewer: each message goes through the
// skipper, and what of it goes is written in one writev.
func (c *client) writeSkipping(m *hub.Message) error {
	sh := &c.shed
	if sh.skipper == nil {
		sh.skipper = newSkipper()
	}
	if !sh.sockDone {
		sh.sock, sh.sockDone = sockq.Of(c.nc.Conn), true
	}
	k := sh.skipper
	k.bound, k.sent, k.now = c.s.cfg.MaxDelay, 0, c.s.clock()
	k.drain = float64(sh.linkBps.Load())
	if k.drain <= 0 {
		k.drain = float64(sh.streamBps.Load())
	}
	k.ahead = 0
	if sh.sock != nil {
		k.ahead = float64(sockq.Unacked(sh.sock))
	}
	k.take(m, c.newestKey())
	n, size := 1, len(m.Data)
drain:
	for n < maxBatch && size < maxBatchBytes {
		select {
		case m := <-c.queue():
			k.take(m, c.newestKey())
			n++
			size += len(m.Data)
		default:
			break drain
		}
	}
	k.flush()
	out := k.out
	err := c.writeBatch(out, n)
	k.out = out[:0]
	c.settleSkipped(k)
	if err != nil {
		return err
	}
	if k.done() && sh.release() {
		k.reset()
	}
	return nil
}

// settleSkipped takes a batch's account from the skipper.
func (c *client) settleSkipped(k *skipper) {
	sh := &c.shed
	sh.settled.Add(int64(k.dropped - k.added))
	if k.dropped > 0 {
		sh.bytes.Add(uint64(k.dropped))
		c.topic.shed.bytes.Add(uint64(k.dropped))
	}
	if k.gops > 0 {
		sh.gops.Add(uint64(k.gops))
		c.topic.shed.gops.Add(uint64(k.gops))
	}
	sh.audioPES.Add(uint64(k.audioPES))
	k.dropped, k.added, k.gops, k.audioPES = 0, 0, 0, 0
}

// newestKey is where the stream's newest keyframe starts, or nil.
func (c *client) newestKey() *keyMark {
	if c.topic.cache == nil {
		return nil
	}
	return c.topic.cache.key.Load()
}
