package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// avStream returns 4 s of MPEG-1 video (a keyframe every 10 frames, 25 fps)
// and MP2 audio, as ffmpeg muxes them for vw, cut into messages of 7
// packets as vw stream sends them.
func avStream(t *testing.T) [][]byte {
	t.Helper()
	ffmpeg := testutil.NeedTool(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "av.ts")
	cmd := exec.Command(ffmpeg, "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "4", "-c:v", "mpeg1video", "-g", "10", "-bf", "0", "-c:a", "mp2", "-b:a", "64k",
		"-muxdelay", "0.001", "-f", "mpegts", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	b = interleave(b, 0x101, 3)
	var msgs [][]byte
	for len(b) > 0 {
		n := min(len(b), 7*ts.PacketSize)
		msgs = append(msgs, b[:n])
		b = b[n:]
	}
	return msgs
}

// interleave delays every packet of pid by k packets of the others, as vw
// stream's muxer interleaves feeds that arrive in chunks: ffmpeg writes
// each PES whole, vw's output splits audio PES around video packets.
func interleave(b []byte, pid uint16, k int) []byte {
	type slot struct {
		at float64
		p  []byte
	}
	var slots []slot
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		p := b[i : i+ts.PacketSize]
		at := float64(i / ts.PacketSize)
		if ts.PID(p) == pid {
			at += float64(k) + 0.5
		}
		slots = append(slots, slot{at, p})
	}
	sort.SliceStable(slots, func(i, j int) bool { return slots[i].at < slots[j].at })
	out := make([]byte, 0, len(b))
	for _, s := range slots {
		out = append(out, s.p...)
	}
	return out
}

// forward runs msgs through one resync as a receiver would, losing the
// messages lost says, and returns what it forwards after each gap (the
// stream's start counts as one when message 0 is lost). What it forwarded
// before a gap cannot be taken back: only what follows is checked.
func forward(msgs [][]byte, lost func(i int) bool) [][]byte {
	var r resync
	var segs [][]byte
	gap := false
	for i, m := range msgs {
		if lost(i) {
			gap = true
			continue
		}
		if gap {
			r.gap()
			segs = append(segs, nil)
			gap = false
		}
		buf, copied := r.filter(m, headerLen)
		if copied && buf != nil {
			buf = buf[headerLen:]
		}
		if len(segs) > 0 {
			segs[len(segs)-1] = append(segs[len(segs)-1], buf...)
		}
	}
	return segs
}

// pesReport walks a stream and says, per PID, whether its first packet
// starts a PES, and counts bounded PES that end short of their length.
type pesReport struct {
	startsMidPES []uint16
	short        int
	firstVideo   []byte // the first video PES's first packet payload
}

func walkPES(b []byte) pesReport {
	var rep pesReport
	seen := map[uint16]bool{}
	want := map[uint16]int{} // declared length of the PES in progress, with its header
	got := map[uint16]int{}
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		p := b[i : i+ts.PacketSize]
		pid := ts.PID(p)
		if pid == ts.PIDPAT || pid == 0x1000 || pid == 0x11 || !ts.HasPayload(p) {
			continue
		}
		off, _ := ts.PayloadOffset(p)
		if !seen[pid] {
			seen[pid] = true
			if !ts.PayloadUnitStart(p) {
				rep.startsMidPES = append(rep.startsMidPES, pid)
			}
		}
		if ts.PayloadUnitStart(p) {
			if want[pid] > 0 && got[pid] < want[pid] {
				rep.short++
			}
			h, err := ts.ParsePES(p[off:])
			want[pid], got[pid] = 0, 0
			if err == nil && h.Length > 0 {
				want[pid] = h.Length + 6
			}
			if err == nil && ts.IsVideoStreamID(h.StreamID) && rep.firstVideo == nil {
				rep.firstVideo = p[off+h.DataOffset:]
			}
		}
		got[pid] += ts.PacketSize - off
	}
	return rep
}

// lastVideoStart is where the last video PES of b starts.
func lastVideoStart(b []byte) int {
	at := len(b)
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		p := b[i : i+ts.PacketSize]
		if off, ok := ts.PayloadOffset(p); ok && ts.PayloadUnitStart(p) && off+4 <= ts.PacketSize && ts.IsVideoStreamID(p[off+3]) {
			at = i
		}
	}
	return at
}

func TestResyncPassesAnUnbrokenStreamAsIs(t *testing.T) {
	msgs := avStream(t)
	var r resync
	for i, m := range msgs {
		buf, copied := r.filter(m, headerLen)
		if copied || &buf[0] != &m[0] || len(buf) != len(m) {
			t.Fatalf("message %d of an unbroken stream was not passed as is", i)
		}
	}
}

// After a gap the receiver forwards nothing until a keyframe, then the
// tables, the keyframe's PES from its first packet, and every other PID from
// its next PES start: no half frame reaches a player, and ffmpeg decodes
// the result without an error.
func TestResyncJoinsAtTheNextKeyframe(t *testing.T) {
	msgs := avStream(t)
	for _, tc := range []struct {
		name string
		lost func(i int) bool
	}{
		{"joined mid-stream", func(i int) bool { return i < 37 }},
		{"a gap of one message", func(i int) bool { return i == 50 }},
		{"a gap of many", func(i int) bool { return i >= 20 && i < 90 }},
		{"gaps again and again", func(i int) bool { return i%23 == 5 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			segs := forward(msgs, tc.lost)
			if len(segs) == 0 {
				t.Fatal("no gap seen")
			}
			for i, out := range segs[:len(segs)-1] { // the last may end before a keyframe
				if len(out) == 0 {
					t.Fatalf("after gap %d: nothing forwarded", i)
				}
				if ts.PID(out) != ts.PIDPAT {
					t.Errorf("after gap %d: forwarding starts with PID %#x, want the PAT first", i, ts.PID(out))
				}
				rep := walkPES(out)
				if len(rep.startsMidPES) > 0 {
					t.Errorf("after gap %d: PIDs %#x start mid-PES", i, rep.startsMidPES)
				}
				if key, _ := ts.Keyframe(ts.FamilyMPEG1, rep.firstVideo); !key {
					t.Errorf("after gap %d: the first video PES forwarded is not a keyframe", i)
				}
				// The next gap cuts the segment short: decode up to
				// its last video PES start.
				path := filepath.Join(t.TempDir(), "out.ts")
				if err := os.WriteFile(path, out[:lastVideoStart(out)], 0o600); err != nil {
					t.Fatal(err)
				}
				if msg, err := tscheck.Decode(path); err != nil {
					t.Errorf("after gap %d: ffmpeg -xerror cannot decode what was forwarded: %v\n%s", i, err, msg)
				}
			}
		})
	}
}

// The walk above must see a stream cut mid-PES for what it is, or the test
// proves nothing: the same gaps without resync are caught.
func TestWalkPESSeesHalfFrames(t *testing.T) {
	msgs := avStream(t)
	var cut []byte
	for i, m := range msgs {
		if i < 37 {
			continue
		}
		cut = append(cut, m...)
	}
	rep := walkPES(cut)
	if len(rep.startsMidPES) == 0 {
		t.Fatal("a stream cut at message 37 shows no PID starting mid-PES")
	}
}

// A stream without video joins at the next audio PES start.
func TestResyncAudioOnly(t *testing.T) {
	s := tscheck.NewSynth(false, 0)
	b := s.Append(nil, 200)
	var msgs [][]byte
	for len(b) > 0 {
		n := min(len(b), 5*ts.PacketSize)
		msgs = append(msgs, b[:n])
		b = b[n:]
	}
	segs := forward(msgs, func(i int) bool { return i == 3 })
	if len(segs) != 1 {
		t.Fatalf("%d gaps seen, want 1", len(segs))
	}
	out := segs[0]
	rep := walkPES(out)
	if len(out) == 0 || len(rep.startsMidPES) > 0 || rep.short > 0 {
		t.Fatalf("audio-only stream after a gap: %d bytes, PIDs mid-PES %#x, %d short PES", len(out), rep.startsMidPES, rep.short)
	}
	if ts.PID(out) != ts.PIDPAT {
		t.Error("the PAT does not lead what is forwarded after the gap")
	}
}
