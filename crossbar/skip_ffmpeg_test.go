package crossbar

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
	ff := testutil.NeedTool(t, "ffmpeg")
	ffprobe := testutil.NeedTool(t, "ffprobe")
	for _, tc := range []struct {
		name  string
		codec []string
	}{
		{"mpeg1", []string{"-c:v", "mpeg1video", "-bf", "0", "-c:a", "mp2"}},
		{"h264", []string{"-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-c:a", "aac"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			args := []string{"-v", "error", "-nostdin",
				"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
				"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
				"-t", "8", "-g", "25"}
			args = append(args, tc.codec...)
			args = append(args, "-ar", "44100", "-f", "mpegts", "-muxdelay", "0.001", "pipe:1")
			sent, err := exec.CommandContext(ctx, ff, args...).Output()
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
			file := filepath.Join(t.TempDir(), "viewer.ts")
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
			if msg, err := tscheck.Decode(file); err != nil || msg != "" {
				t.Fatalf("ffmpeg decoding what the viewer got: %v %s", err, msg)
			}
			r := tscheck.Walk(got)
			if len(r.CCErrors) > 0 {
				t.Errorf("%d continuity errors, first: %s", len(r.CCErrors), r.CCErrors[0])
			}
			frames := probeFrames(t, ctx, ffprobe, file)
			sentFrames := probeFrames(t, ctx, ffprobe, writeTemp(t, sent))
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

type probedFrame struct {
	pts  time.Duration
	key  bool
	kind string
}

// probeFrames lists the video frames ffmpeg decodes from a file.
func probeFrames(t *testing.T, ctx context.Context, ffprobe, file string) []probedFrame {
	t.Helper()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-select_streams", "v",
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
		if err != nil {
			continue
		}
		fs = append(fs, probedFrame{pts: d, key: f.KeyFrame == 1, kind: f.PictType})
	}
	return fs
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "sent.ts")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
