package crossbar

import (
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// TestSkipperFFmpeg skips through real ffmpeg streams, MPEG-1 + MP2 as
// jsmpeg plays them and H.264 + AAC as the MSE player does, in the
// messages vw stream would send: a stretch with video dropped, one with
// audio dropped too, then back. ffmpeg decodes what a viewer got without
// an error (an H.264 picture that lost its reference would show), each
// stretch of pictures after a gap starts with a keyframe, and there are
// fewer pictures than were sent.
func TestSkipperFFmpeg(t *testing.T) {
	testutil.NeedTool(t, "ffmpeg")
	testutil.NeedTool(t, "ffprobe")
	for _, tc := range []struct {
		name  string
		codec []string
	}{
		{"mpeg1", []string{"-c:v", "mpeg1video", "-bf", "0", "-c:a", "mp2"}},
		{"h264", []string{"-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-c:a", "aac"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testutil.Context(t, 60*time.Second)
			sent, err := encodeClip(t, ctx, "testsrc2=size=320x240:rate=25", 8, append([]string{"-g", "25"}, tc.codec...)...)
			if err != nil {
				t.Skipf("ffmpeg cannot write %s here: %v", tc.name, err)
			}
			msgs := cut(sent, 11*ts.PacketSize)
			n := len(msgs)
			got, _, _ := runSkipper(msgs, func(i int) int32 {
				switch {
				case i < n/5:
					return -1
				case i < n*2/5:
					return 1
				case i < n/2:
					return 2
				}
				return 0
			})
			file := writeTemp(t, "viewer.ts", got)
			wantDecodes(t, file, "the viewer")
			r := tscheck.Walk(got)
			if len(r.CCErrors) > 0 {
				t.Errorf("%d continuity errors, first: %s", len(r.CCErrors), r.CCErrors[0])
			}
			frames := timed(probeFrames(t, ctx, file))
			sentFrames := timed(probeFrames(t, ctx, writeTemp(t, "sent.ts", sent)))
			if len(frames) == 0 || len(frames) >= len(sentFrames) {
				t.Fatalf("%d pictures decoded of %d sent, want fewer", len(frames), len(sentFrames))
			}
			step := 40 * time.Millisecond
			resumed := 0
			for i := 1; i < len(frames); i++ {
				if frames[i].pts-frames[i-1].pts > step*3/2 {
					resumed++
					if !frames[i].key {
						t.Errorf("pictures resume at %v with a %s frame, want a keyframe", frames[i].pts, frames[i].kind)
					}
				}
			}
			if resumed == 0 {
				t.Error("no gap in the pictures: nothing was skipped")
			}
			t.Logf("%d of %d pictures decoded, %d resumptions after a gap", len(frames), len(sentFrames), resumed)
		})
	}
}
