package agg

import (
	"bytes"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// audioPES lists the PES starts on pid in b: PTS, and whether the PES is
// exactly one silent frame of cfg.
type pesStart struct {
	pts    uint64
	silent bool
}

func audioPES(t *testing.T, b []byte, pid uint16, cfg adtsConfig) []pesStart {
	t.Helper()
	frame := appendSilentADTS(nil, cfg)
	var out []pesStart
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		p := b[i : i+ts.PacketSize]
		if ts.PID(p) != pid || !ts.PayloadUnitStart(p) {
			continue
		}
		off, _ := ts.PayloadOffset(p)
		h, err := ts.ParsePES(p[off:])
		if err != nil || h.PTS == 0 {
			t.Fatalf("audio PES at packet %d: %v", i/ts.PacketSize, err)
		}
		data := p[off+h.DataOffset:]
		out = append(out, pesStart{
			pts:    ts.Timestamp(p[off+h.PTS:]),
			silent: h.Length == 8+len(frame) && bytes.HasPrefix(data, frame),
		})
	}
	return out
}

// TestMuteH264KeepsAudioTrack mutes the AAC feed of an H.264 stream: the
// audio PID carries on in the same PMT (no new version) with silent frames
// of the track's configuration, one per PES, each 1024 samples after the
// last, paced at the real rate; none of the feed's own frames follows.
// Unmuting switches back at a PES boundary on the same PID, timestamps
// still going forward, and no silence follows the first real frame.
func TestMuteH264KeepsAudioTrack(t *testing.T) {
	r := newRig(t, Config{}, "video0", "audio0")
	video := tscheck.NewSynth(true, 0)
	video.H264 = true
	audio := tscheck.NewSynth(false, 0)
	audio.H264 = true
	r.play(200*time.Millisecond, map[string]*tscheck.Synth{"video0": video})
	r.play(time.Second, map[string]*tscheck.Synth{"video0": video, "audio0": audio})
	before := tscheck.Walk(r.out)
	a := before.Kind(false)
	if len(a) != 1 || a[0].Type != ts.TypeADTS {
		t.Fatalf("before the mute: audio %+v", a)
	}
	pid := a[0].PID
	cfg := adtsConfig{profile: 1, rateIdx: 3, channels: 1} // the synth's
	lastReal := audioPES(t, r.out, pid, cfg)
	if len(lastReal) == 0 || lastReal[len(lastReal)-1].silent {
		t.Fatalf("before the mute: %d audio PES, or silent ones", len(lastReal))
	}

	mark := len(r.out)
	r.set("video0")
	r.play(2*time.Second, map[string]*tscheck.Synth{"video0": video})
	muted := audioPES(t, r.out[mark:], pid, cfg)
	// 2 s at 48 kHz is 93.75 frames.
	if len(muted) < 90 || len(muted) > 96 {
		t.Fatalf("%d audio PES in the 2 s after the mute, want about 94", len(muted))
	}
	prev := lastReal[len(lastReal)-1].pts
	for i, p := range muted {
		if !p.silent {
			t.Fatalf("audio PES %d after the mute is not one silent frame", i)
		}
		if p.pts-prev != 1920 {
			t.Fatalf("audio PES %d after the mute: PTS step %d, want 1920 (1024 samples at 48 kHz)", i, p.pts-prev)
		}
		prev = p.pts
	}
	rep := tscheck.Walk(r.out)
	if len(rep.PMTVersions) != len(before.PMTVersions) || len(rep.CCErrors) > 0 || rep.OffPMT > 0 || rep.Malformed > 0 {
		t.Fatalf("PMT versions %v (before the mute %v), CC errors %v, %d off-PMT, %d malformed",
			rep.PMTVersions, before.PMTVersions, rep.CCErrors, rep.OffPMT, rep.Malformed)
	}

	mark = len(r.out)
	r.set("video0", "audio0")
	r.play(time.Second, map[string]*tscheck.Synth{"video0": video, "audio0": audio})
	after := audioPES(t, r.out[mark:], pid, cfg)
	real := -1
	for i, p := range after {
		if p.pts <= prev {
			t.Fatalf("audio PES %d after the unmute: PTS %d not after %d", i, p.pts, prev)
		}
		prev = p.pts
		if !p.silent && real < 0 {
			real = i
		}
		if p.silent && real >= 0 {
			t.Fatalf("a silent frame (PES %d) after the real audio came back (PES %d)", i, real)
		}
	}
	if real < 0 || len(after)-real < 40 {
		t.Fatalf("after the unmute: %d audio PES, real from %d", len(after), real)
	}
	rep = tscheck.Walk(r.out)
	if a := rep.Kind(false); len(a) != 1 || a[0].PID != pid || len(rep.CCErrors) > 0 || a[0].CutPES > 0 {
		t.Fatalf("after the unmute: audio %+v (was PID %#x), CC errors %v", a, pid, rep.CCErrors)
	}
}

// TestMuteH264WithoutVideo: silence stands in for audio only in a stream
// that has H.264 video to keep playing; an audio-only mute or a stream whose
// video has gone sends nothing.
func TestMuteH264WithoutVideo(t *testing.T) {
	r := newRig(t, Config{}, "audio0", "other")
	audio := tscheck.NewSynth(false, 0)
	audio.H264 = true
	r.play(time.Second, map[string]*tscheck.Synth{"audio0": audio})
	r.set("other")
	mark := len(r.out)
	r.play(time.Second, nil)
	if n := len(audioPES(t, r.out[mark:], outFirstPID, adtsConfig{profile: 1, rateIdx: 3, channels: 1})); n != 0 {
		t.Fatalf("%d audio PES after muting a stream with no video", n)
	}
}
