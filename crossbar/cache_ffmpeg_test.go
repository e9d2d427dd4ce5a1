package crossbar

import (
	"context"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/ts"
)

// TestCacheFFmpeg sends real ffmpeg streams (MPEG-1 + MP2 as jsmpeg plays,
// H.264 + AAC as the MSE player will) through the relay and records what a
// viewer joining in the middle of a GOP receives: ffmpeg decodes it without
// an error, and its first video frame is a keyframe (an I picture), so a
// player has a picture from the first frame it is sent.
func TestCacheFFmpeg(t *testing.T) {
	eachClip(t, "testsrc=size=160x120:rate=25", 3, nil, func(t *testing.T, ctx context.Context, stream []byte) {
		r := startRelay(t, Config{})
		pub := r.dial(t, "/in/cam")
		r.waitClients(t, "/out/cam", 1, 0, 0)
		// Join at 1.5 s: half a GOP after a keyframe.
		cut := len(stream) / 2 / ts.PacketSize * ts.PacketSize
		publish(t, pub, stream[:cut], 7*ts.PacketSize)
		testutil.Eventually(t, 5*time.Second, func() bool { return r.topic("/out/cam").BytesIn == uint64(cut) },
			"the relay did not take in the first half")
		late := r.dial(t, "/out/cam")
		r.waitClients(t, "/out/cam", 1, 1, 0)
		publish(t, pub, stream[cut:], 7*ts.PacketSize)
		send(t, pub, websocket.TextMessage, []byte("end"))
		var got []byte
		for {
			mt, b := read(t, late)
			if mt == websocket.TextMessage {
				break
			}
			got = append(got, b...)
		}
		if len(got) <= len(stream)-cut+2*ts.PacketSize {
			t.Fatalf("the late viewer got %d bytes: no more than the PAT/PMT and the live stream", len(got))
		}
		file := writeTemp(t, "late.ts", got)
		wantDecodes(t, file, "the late viewer")
		frames := probeFrames(t, ctx, file)
		if len(frames) == 0 || frames[0].kind != "I" || !frames[0].key {
			t.Fatalf("the late viewer's first video frame is %+v (of %d), want a keyframe", frames[:min(1, len(frames))], len(frames))
		}
		t.Logf("the late viewer got %d bytes, %d video frames, the first a keyframe", len(got), len(frames))
	})
}
