package crossbar

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
)

// Clips: short MPEG-TS streams ffmpeg encodes faster than real time, for
// tests that feed the relay (or the skipper) a known stream and look at
// what a viewer got with ffmpeg's eyes.

// encodeClip has ffmpeg encode seconds of the lavfi video source src and a
// 440 Hz tone as MPEG-TS, with the output options opts (codecs, GOP); it
// returns ffmpeg's error for the caller to judge (a build without libx264
// is a reason to skip, not to fail).
func encodeClip(t *testing.T, ctx context.Context, src string, seconds int, opts ...string) ([]byte, error) {
	t.Helper()
	args := []string{"-v", "error", "-nostdin",
		"-f", "lavfi", "-i", src,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", strconv.Itoa(seconds)}
	args = append(args, opts...)
	args = append(args, "-ar", "44100", "-f", "mpegts", "-muxdelay", "0.001", "pipe:1")
	return exec.CommandContext(ctx, testutil.NeedTool(t, "ffmpeg"), args...).Output()
}

// clipCodecs are the two families a clip is encoded in: MPEG-1 + MP2 as
// jsmpeg plays them (which has no B pictures), H.264 + AAC as the MSE
// player does.
var clipCodecs = []struct {
	name string
	opts []string
}{
	{"mpeg1", []string{"-c:v", "mpeg1video", "-bf", "0", "-c:a", "mp2"}},
	{"h264", []string{"-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac"}},
}

// eachClip runs f in a subtest per family on a clip of seconds of src with
// a GOP a second and the options extra; a family this ffmpeg cannot write
// is skipped. It needs ffmpeg and ffprobe.
func eachClip(t *testing.T, src string, seconds int, extra []string, f func(t *testing.T, ctx context.Context, clip []byte)) {
	t.Helper()
	testutil.NeedTool(t, "ffmpeg")
	testutil.NeedTool(t, "ffprobe")
	for _, c := range clipCodecs {
		t.Run(c.name, func(t *testing.T) {
			ctx := testutil.Context(t, 60*time.Second)
			opts := append(append([]string{"-g", "25"}, c.opts...), extra...)
			clip, err := encodeClip(t, ctx, src, seconds, opts...)
			if err != nil {
				t.Skipf("ffmpeg cannot write %s here: %v", c.name, err)
			}
			f(t, ctx, clip)
		})
	}
}

// writeTemp writes b to a file named name in the test's temporary folder
// and returns its path.
func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// wantDecodes fails the test unless ffmpeg decodes file without an error;
// who names the viewer whose stream it is.
func wantDecodes(t *testing.T, file, who string) {
	t.Helper()
	if msg, err := tscheck.Decode(file); err != nil || msg != "" {
		t.Fatalf("ffmpeg decoding what %s got: %v %s", who, err, msg)
	}
}

type probedFrame struct {
	pts   time.Duration
	timed bool // ffprobe gave the frame a pts
	key   bool
	kind  string
}

// probeFrames lists the video frames ffmpeg decodes from a file, in the
// order it decodes them.
func probeFrames(t *testing.T, ctx context.Context, file string) []probedFrame {
	t.Helper()
	out, err := exec.CommandContext(ctx, testutil.NeedTool(t, "ffprobe"), "-v", "error", "-select_streams", "v",
		"-show_entries", "frame=pts_time,pict_type,key_frame", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var probe struct {
		Frames []struct {
			PTS      string `json:"pts_time"`
			PictType string `json:"pict_type"`
			KeyFrame int    `json:"key_frame"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatal(err)
	}
	var fs []probedFrame
	for _, f := range probe.Frames {
		d, err := time.ParseDuration(f.PTS + "s")
		fs = append(fs, probedFrame{pts: d, timed: err == nil, key: f.KeyFrame == 1, kind: f.PictType})
	}
	return fs
}

// timed returns the frames that have a pts.
func timed(fs []probedFrame) []probedFrame {
	var out []probedFrame
	for _, f := range fs {
		if f.timed {
			out = append(out, f)
		}
	}
	return out
}
