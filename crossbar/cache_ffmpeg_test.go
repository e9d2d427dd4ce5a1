package crossbar

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// TestCacheFFmpeg sends real ffmpeg streams (MPEG-1 + MP2 as jsmpeg plays,
// H.264 + AAC as the MSE player will) through the relay and records what a
// viewer joining in the middle of a GOP receives: ffmpeg decodes it without
// an error, and its first video frame is a keyframe (an I picture), so a
// player has a picture from the first frame it is sent.
func TestCacheFFmpeg(t *testing.T) {
	ff := testutil.NeedTool(t, "ffmpeg")
	ffprobe := testutil.NeedTool(t, "ffprobe")
	for _, tc := range []struct {
		name  string
		codec []string
	}{
		{"mpeg1", []string{"-c:v", "mpeg1video", "-bf", "0", "-c:a", "mp2"}},
		{"h264", []string{"-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			args := []string{"-v", "error", "-nostdin",
				"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25",
				"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
				"-t", "3", "-g", "25"}
			args = append(args, tc.codec...)
			args = append(args, "-ar", "44100", "-f", "mpegts", "-muxdelay", "0.001", "pipe:1")
			stream, err := exec.CommandContext(ctx, ff, args...).Output()
			if err != nil {
				t.Skipf("ffmpeg cannot write %s here: %v", tc.name, err)
			}
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
			file := filepath.Join(t.TempDir(), "late.ts")
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
			if msg, err := tscheck.Decode(file); err != nil || msg != "" {
				t.Fatalf("ffmpeg decoding what the late viewer got: %v %s", err, msg)
			}
			out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-select_streams", "v",
				"-show_entries", "frame=pict_type,key_frame", "-of", "json", file).Output()
			if err != nil {
				t.Fatalf("ffprobe: %v", err)
			}
			var probe struct {
				Frames []struct {
					PictType string `json:"pict_type"`
					KeyFrame int    `json:"key_frame"`
				} `json:"frames"`
			}
			if err := json.Unmarshal(out, &probe); err != nil {
				t.Fatal(err)
			}
			if len(probe.Frames) == 0 || probe.Frames[0].PictType != "I" || probe.Frames[0].KeyFrame != 1 {
				t.Fatalf("the late viewer's first video frame is %+v (of %d), want a keyframe", probe.Frames[:min(1, len(probe.Frames))], len(probe.Frames))
			}
			t.Logf("the late viewer got %d bytes, %d video frames, the first a keyframe", len(got), len(probe.Frames))
		})
	}
}
