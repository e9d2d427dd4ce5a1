package agg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vwlab/vw/internal/testutil"
)

func TestParseADTS(t *testing.T) {
	// ffmpeg's aac encoder, 48 kHz mono: LC, rate index 3, one channel.
	c, ok := parseADTS([]byte{0xff, 0xf1, 0x4c, 0x40, 0x1a, 0x1f, 0xfc})
	if !ok || c != (adtsConfig{id: 0, profile: 1, rateIdx: 3, channels: 1}) || c.rate() != 48000 || !c.silentOK() {
		t.Fatalf("parseADTS = %+v %v", c, ok)
	}
	for _, b := range [][]byte{
		{0xff, 0xf1, 0x4c},                         // short
		{0xff, 0xfd, 0x4c, 0x40, 0x1a, 0x1f, 0xfc}, // MPEG-1 layer II, not ADTS
		{0xff, 0xf1, 0x7c, 0x40, 0x1a, 0x1f, 0xfc}, // rate index 15
		{0x00, 0x00, 0x01, 0xc0, 0x1a, 0x1f, 0xfc}, // a PES header
	} {
		if c, ok := parseADTS(b); ok {
			t.Errorf("parseADTS(% x) = %+v, want refusal", b, c)
		}
	}
	if (adtsConfig{profile: 1, channels: 6}).silentOK() || (adtsConfig{profile: 0, channels: 2}).silentOK() {
		t.Error("silentOK accepts what appendSilentADTS cannot write")
	}
}

// TestSilentADTSDecodes has ffmpeg's AAC decoder (the one Chromium uses)
// decode three seconds of our silent frames, mono and stereo, at 48 and
// 44.1 kHz: no error, the right rate and channels and duration, and
// nothing but silence.
func TestSilentADTSDecodes(t *testing.T) {
	ffmpeg := testutil.NeedTool(t, "ffmpeg")
	for _, c := range []adtsConfig{{profile: 1, rateIdx: 3, channels: 1}, {profile: 1, rateIdx: 4, channels: 2}, {id: 1, profile: 1, rateIdx: 3, channels: 2}} {
		var b []byte
		frames := 3 * c.rate() / samplesPerFrame
		for range frames {
			b = appendSilentADTS(b, c)
		}
		if got, ok := parseADTS(b); !ok || got != c {
			t.Fatalf("our own frame parses as %+v %v, want %+v", got, ok, c)
		}
		path := filepath.Join(t.TempDir(), "silence.aac")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(ffmpeg, "-nostdin", "-hide_banner", "-xerror", "-f", "aac", "-i", path,
			"-af", "volumedetect", "-f", "null", "-").CombinedOutput()
		if err != nil {
			t.Fatalf("%+v: ffmpeg: %v\n%s", c, err, out)
		}
		// volumedetect's floor, -91 dB, is a signal of zeros.
		s := string(out)
		samples := "n_samples: " + strconv.Itoa(frames*samplesPerFrame*int(c.channels)) + "\n"
		if !strings.Contains(s, "max_volume: -91.0 dB") || !strings.Contains(s, samples) || strings.Contains(s, "rror") {
			t.Fatalf("%+v: want %d frames of silence, ffmpeg says:\n%s", c, frames, s)
		}
		probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=sample_rate,channels", "-of", "csv=p=0", path).CombinedOutput()
		if err != nil || strings.TrimSpace(string(probe)) != strconv.Itoa(c.rate())+","+strconv.Itoa(int(c.channels)) {
			t.Fatalf("%+v: ffprobe: %v %s", c, err, probe)
		}
	}
}

// FuzzADTS: any bytes parse without panic, and a silent frame written for
// what parsed reads back as the same configuration.
func FuzzADTS(f *testing.F) {
	f.Add([]byte{0xff, 0xf1, 0x4c, 0x40, 0x1a, 0x1f, 0xfc})
	f.Add([]byte{0xff, 0xf9, 0x50, 0x80, 0x02, 0x1f, 0xfc})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := parseADTS(b)
		if !ok {
			return
		}
		frame := appendSilentADTS(nil, c)
		if got, ok := parseADTS(frame); !ok || got != c {
			t.Fatalf("silent frame for %+v parses as %+v %v", c, got, ok)
		}
		if n := int(frame[3]&3)<<11 | int(frame[4])<<3 | int(frame[5]>>5); n != len(frame) {
			t.Fatalf("frame_length %d, frame is %d bytes", n, len(frame))
		}
	})
}
