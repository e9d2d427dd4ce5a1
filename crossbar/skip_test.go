package crossbar

import (
	"bytes"
	"testing"
	"time"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// avFeed is a synthetic stream with video (PID 0x100, a keyframe every
// keyEvery frames) and MP2-sized audio (PID 0x101, bounded PES), one PAT
// and PMT listing both every 100 ms, interleaved by time as a muxer does.
type avFeed struct {
	v, a         *tscheck.Synth
	patCC, pmtCC ts.Continuity
	sincePSI     int
	data         []byte
}

func newAVFeed(keyEvery int) *avFeed {
	v := tscheck.NewSynth(true, 90000)
	v.KeyEvery, v.NoPMT = keyEvery, true
	a := tscheck.NewSynth(false, 90000)
	a.NoPMT = true
	return &avFeed{v: v, a: a}
}

// frames appends n video frames and the audio frames of their time.
func (f *avFeed) frames(n int) []byte {
	start := len(f.data)
	for range n {
		if f.sincePSI%3 == 0 {
			f.data, f.patCC = ts.AppendSectionPackets(f.data, ts.PIDPAT, f.patCC, ts.AppendPAT(nil, 1, 0, []ts.Program{{Number: 1, PID: 0x1000}}))
			pmt := ts.PMT{Program: 1, PCRPID: 0x100, Streams: []ts.Stream{{Type: 0x02, PID: 0x100}, {Type: 0x03, PID: 0x101}}}
			f.data, f.pmtCC = ts.AppendSectionPackets(f.data, 0x1000, f.pmtCC, ts.AppendPMT(nil, &pmt))
		}
		f.sincePSI++
		f.data = f.v.Append(f.data, 1)
		for f.a.PTS() < f.v.PTS() {
			from := len(f.data)
			f.data = f.a.Append(f.data, 1)
			for i := from; i < len(f.data); i += ts.PacketSize {
				ts.SetPID(f.data[i:], 0x101)
			}
		}
	}
	return f.data[start:]
}

// cut makes messages of chunk bytes of b.
func cut(b []byte, chunk int) []*hub.Message {
	var ms []*hub.Message
	for len(b) > 0 {
		k := min(chunk, len(b))
		ms = append(ms, &hub.Message{Data: b[:k:k], From: 1})
		b = b[k:]
	}
	return ms
}

// pes is one PES of a walk: its PID, PTS and bytes.
type pes struct {
	pid  uint16
	pts  uint64
	data []byte
	key  bool
}

// pesList cuts a stream into its PES, video and audio, payload bytes only.
func pesList(b []byte) []pes {
	var out []pes
	open := map[uint16]int{}
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		p := b[i : i+ts.PacketSize]
		pid := ts.PID(p)
		if pid != 0x100 && pid != 0x101 || !ts.HasPayload(p) {
			continue
		}
		off, _ := ts.PayloadOffset(p)
		if ts.PayloadUnitStart(p) {
			h, err := ts.ParsePES(p[off:])
			if err != nil {
				continue
			}
			key := bytes.HasPrefix(p[off+h.DataOffset:], []byte{0, 0, 1, 0xb3})
			out = append(out, pes{pid: pid, pts: ts.Timestamp(p[off+h.PTS:]), key: key})
			open[pid] = len(out) - 1
		}
		if k, ok := open[pid]; ok {
			out[k].data = append(out[k].data, p[off:]...)
		}
	}
	return out
}

// stage holds a skip level (see runSkipper) up to message n*num/den of a
// stream of n messages.
type stage struct {
	num, den int
	level    int32
}

// schedule returns runSkipper's level for n messages: each stage's level
// until its end, 0 after the last.
func schedule(n int, stages ...stage) func(i int) int32 {
	return func(i int) int32 {
		for _, s := range stages {
			if i < n*s.num/s.den {
				return s.level
			}
		}
		return 0
	}
}

// runSkipper plays a viewer's pump over msgs: healthy (every message as it
// is) while level(i) < 0, held from the first message at level 1 or up
// until its skipper is done at level 0. At level 1 a PES starting now
// would arrive 0.6 s late (video goes no more, audio does), at level 2
// 0.9 s (neither does), at level 0 at once. Each message is kept by a
// keyframe cache first, as the hub does. It returns what the viewer got,
// and the messages it got.
func runSkipper(msgs []*hub.Message, level func(i int) int32) (got []byte, out []*hub.Message, k *skipper) {
	cache := newKeyframeCache(newCacheBudget(0, 0), time.Now)
	k = newSkipper()
	k.bound, k.drain = time.Second, 1e12 // what goes adds no delay
	held := false
	for i, m := range msgs {
		cache.Keep(m)
		lv := level(i)
		if lv > 0 {
			held = true
		}
		if !held {
			out = append(out, m)
			continue
		}
		k.ahead = []float64{0, 0.6, 0.9}[lv] * k.drain
		k.sent = 0
		k.take(m, cache.key.Load())
		k.flush()
		out = append(out, k.out...)
		k.out = k.out[:0]
		if lv == 0 && k.done() {
			held = false
			k.reset()
		}
	}
	for _, m := range out {
		got = append(got, m.Data...)
	}
	return got, out, k
}

// checkSkipped checks a skipped stream against what was sent: valid TS
// (continuity counters, no malformed packet, no PES cut), every PES whole
// and in order, video dropped only from a PES start up to a keyframe, and
// the audio PES it should have (all when wantAudio). It returns the video
// PES dropped.
func checkSkipped(t *testing.T, sent, got []byte, wantAudio bool) int {
	t.Helper()
	r := tscheck.Walk(got)
	if len(r.CCErrors) > 0 {
		t.Errorf("%d continuity errors, first: %s", len(r.CCErrors), r.CCErrors[0])
	}
	if r.Malformed > 0 || r.BadPSI > 0 {
		t.Errorf("%d malformed packets, %d bad PSI", r.Malformed, r.BadPSI)
	}
	for _, e := range r.ES {
		if e.CutPES > 0 {
			t.Errorf("PID %#x: %d PES cut", e.PID, e.CutPES)
		}
	}
	in, out := pesList(sent), pesList(got)
	if r.PATs < pesCount(in, 0x100)/3-1 {
		t.Errorf("%d PATs: PSI was dropped", r.PATs)
	}
	// Every PES that went is one that was sent, whole, in order.
	j := 0
	dropped, gap := 0, false
	for _, o := range out {
		for j < len(in) && (in[j].pid != o.pid || in[j].pts != o.pts) {
			if in[j].pid == 0x100 {
				dropped++
				gap = true
			} else if wantAudio {
				t.Fatalf("audio PES at PTS %d dropped", in[j].pts)
			}
			j++
		}
		if j == len(in) {
			t.Fatalf("PES of PID %#x at PTS %d was not sent, or not in this order", o.pid, o.pts)
		}
		if !bytes.Equal(o.data, in[j].data) {
			t.Fatalf("PES of PID %#x at PTS %d: %d bytes, sent %d: not whole", o.pid, o.pts, len(o.data), len(in[j].data))
		}
		if o.pid == 0x100 && gap {
			if !o.key {
				t.Fatalf("video resumed at PTS %d, not a keyframe", o.pts)
			}
			gap = false
		}
		j++
	}
	return dropped
}

func pesCount(ps []pes, pid uint16) int {
	n := 0
	for _, p := range ps {
		if p.pid == pid {
			n++
		}
	}
	return n
}

// A skipping viewer's stream: video dropped from a PES start to the newest
// keyframe, all audio and PSI kept, continuity counters continuous thanks
// to the markers, no PES cut; and once it is back, the published messages
// themselves, not copies.
func TestSkipperKeepsStreamWhole(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chunk int
	}{
		{"whole packets", 7 * ts.PacketSize},
		{"one packet", ts.PacketSize},
		{"big messages", 60 * ts.PacketSize},
		{"cut anywhere", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAVFeed(10)
			sent := f.frames(100)
			msgs := cut(sent, tc.chunk)
			n := len(msgs)
			got, out, k := runSkipper(msgs, schedule(n, stage{1, 5, -1}, stage{1, 2, 1}))
			if dropped := checkSkipped(t, sent, got, true); dropped == 0 || dropped > 40 {
				t.Errorf("%d video PES dropped over 30%% of a 10-frame-GOP stream, want some, and no more than a GOP past it", dropped)
			}
			if !k.done() {
				t.Fatal("the skipper never got back to the stream as published")
			}
			// The tail is the published messages, shared.
			last := out[len(out)-1]
			if last != msgs[len(msgs)-1] {
				t.Error("the viewer's last message is a copy, not the published one")
			}
		})
	}
}

// At level 2 audio goes too, PES by PES, never cut; PSI stays.
func TestSkipperDropsAudioWhole(t *testing.T) {
	f := newAVFeed(10)
	sent := f.frames(100)
	msgs := cut(sent, 5*ts.PacketSize)
	n := len(msgs)
	got, _, _ := runSkipper(msgs, schedule(n, stage{1, 5, -1}, stage{1, 3, 1}, stage{1, 2, 2}))
	checkSkipped(t, sent, got, false)
	in, out := pesList(sent), pesList(got)
	if a, b := pesCount(out, 0x101), pesCount(in, 0x101); a >= b || a < b/2 {
		t.Errorf("%d of %d audio PES went: want some dropped, for a sixth of the stream", a, b)
	}
}

// A level that drops back before the next keyframe still resumes only
// there; a level up over a keyframe skips that GOP too.
func TestSkipperResumesAtNewestKeyframe(t *testing.T) {
	f := newAVFeed(5)
	sent := f.frames(60)
	msgs := cut(sent, 3*ts.PacketSize)
	n := len(msgs)
	got, _, _ := runSkipper(msgs, schedule(n, stage{1, 6, -1}, stage{1, 2, 1}))
	dropped := checkSkipped(t, sent, got, true)
	// Held for a third of 12 GOPs: at least 3 GOPs' pictures went.
	if dropped < 15 {
		t.Errorf("%d video PES dropped, want at least three GOPs (15)", dropped)
	}
}

// What is not TS goes as it is: the skipper drops only what it
// understands, and a viewer that cannot take a stream of something else
// meets the relay's queue bounds as before.
func TestSkipperPassesWhatIsNotTS(t *testing.T) {
	data := make([]byte, 200000)
	for i := range data {
		data[i] = byte(i*7919>>3) ^ byte(i>>11) // sync bytes here and there, never in step
	}
	for _, chunk := range []int{1000, 64 << 10} {
		msgs := cut(data, chunk)
		_, out, _ := runSkipper(msgs, func(int) int32 { return 2 })
		if len(out) != len(msgs) {
			t.Errorf("in %d-byte messages: %d messages went of %d", chunk, len(out), len(msgs))
			continue
		}
		for i := range out {
			if out[i] != msgs[i] {
				t.Errorf("in %d-byte messages: message %d did not go as it was", chunk, i)
				break
			}
		}
	}
}
