package api

import (
	"context"
	"os/exec"
	"reflect"
	"testing"
	"time"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
)

// TestProbe has ffmpeg encode feeds as vw stream is sent them and checks
// what the status page learns from their packets: tracks, codecs and the
// video's size, including MPEG-1 video that ffmpeg labels as MPEG-2.
func TestProbe(t *testing.T) {
	bin := testutil.NeedTool(t, "ffmpeg")
	for _, tc := range []struct {
		name string
		args []string
		want []Track
	}{
		{"mpeg1 and mp2", []string{"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=44100",
			"-c:v", "mpeg1video", "-bf", "0", "-c:a", "mp2"},
			[]Track{{Kind: "video", Codec: "mpeg1video", Width: 320, Height: 240}, {Kind: "audio", Codec: "mp2"}}},
		{"mpeg2", []string{"-f", "lavfi", "-i", "testsrc=size=176x144:rate=25", "-c:v", "mpeg2video"},
			[]Track{{Kind: "video", Codec: "mpeg2video", Width: 176, Height: 144}}},
		{"audio only", []string{"-f", "lavfi", "-i", "sine=sample_rate=48000", "-c:a", "aac"},
			[]Track{{Kind: "audio", Codec: "aac"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-v", "error", "-nostdin"}, tc.args...)
			args = append(args, "-t", "1", "-f", "mpegts", "-muxdelay", "0.001", "pipe:1")
			feed, err := exec.Command(bin, args...).Output()
			if err != nil {
				t.Fatalf("ffmpeg: %v", err)
			}
			h := hub.New()
			sub := h.Subscribe("feed/x", hub.SubConfig{Queue: 4096})
			defer sub.Close()
			topic := h.Join("feed/x")
			defer topic.Leave()
			for b := feed; len(b) > 0; {
				n := min(len(b), 188*40)
				topic.Publish(&hub.Message{Data: b[:n]})
				b = b[n:]
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, complete := probe(ctx, nil, sub)
			if !complete || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("probe found %+v (complete: %v), want %+v", got, complete, tc.want)
			}
		})
	}
}

func TestSafeURL(t *testing.T) {
	for in, want := range map[string]string{
		"wss://relay.example.com/in/lab1/front":            "wss://relay.example.com/in/lab1/front",
		"wss://user:secret@relay.example.com/in/lab1":      "wss://relay.example.com/in/lab1",
		"ws://127.0.0.1:8080/in/x?token=abc#frag":          "ws://127.0.0.1:8080/in/x",
		"ws://relay/in/x?code=one-time&token=t":            "ws://relay/in/x",
		"ws://[::1]:8080/bi/lab1/api?access_token=eyJhbGc": "ws://[::1]:8080/bi/lab1/api",
	} {
		if got := safeURL(in); got != want {
			t.Errorf("safeURL(%q) = %q, want %q", in, got, want)
		}
	}
}
