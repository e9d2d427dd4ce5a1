package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
)

// TestCodecsRuns runs a tiny codecs benchmark: both encoders get a row, at
// a rate that reached the SSIM target, with a CPU figure, and H.264 has its
// ratio to MPEG-1.
func TestCodecsRuns(t *testing.T) {
	testutil.NeedTool(t, "ffmpeg")
	out := runBench(t, 2*time.Minute, "codecs", "-short", "-duration", "1s", "-size", "160x120", "-steps", "3", "-sources", "testsrc")
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 8 && f[0] == "testsrc" {
			rows[f[1]] = f
		}
	}
	for _, enc := range []string{"mpeg1video", "h264"} {
		f := rows[enc]
		if f == nil {
			t.Fatalf("no %s row", enc)
		}
		// testsrc encoder -b:v kbit/s bytes/s KB/s SSIM CPU% ...
		ssim, err := strconv.ParseFloat(f[6], 64)
		if err != nil || ssim < 0.95 {
			t.Errorf("%s: SSIM %q, want ≥ 0.95", enc, f[6])
		}
		if kb, err := strconv.ParseFloat(f[4], 64); err != nil || kb <= 0 {
			t.Errorf("%s: %q KB/s", enc, f[4])
		}
		if !strings.HasSuffix(f[7], "%") {
			t.Errorf("%s: CPU %q", enc, f[7])
		}
	}
	if r := rows["h264"]; r[len(r)-1] == "—" {
		t.Error("no H.264/MPEG-1 ratio")
	}
}
