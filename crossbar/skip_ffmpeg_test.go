package crossbar

import (
	"context"
	"testing"
	"time"

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
	eachClip(t, "testsrc2=size=320x240:rate=25", 8, []string{"-bf", "0"}, func(t *testing.T, ctx context.Context, sent []byte) {
		msgs := cut(sent, 11*ts.PacketSize)
		n := len(msgs)
		got, _, _ := runSkipper(msgs, schedule(n, stage{1, 5, -1}, stage{2, 5, 1}, stage{1, 2, 2}))
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
