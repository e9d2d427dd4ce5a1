package main

import (
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
)

// TestCappedRuns runs each capped-link benchmark once, briefly, against a
// vw built for the test: its row comes out, and the capped side kept its
// one connection (the destination's for delay, the viewer's for viewers).
func TestCappedRuns(t *testing.T) {
	testutil.NeedTool(t, "ffmpeg")
	vw := buildVW(t)
	for _, bench := range []string{"delay", "viewers"} {
		t.Run(bench, func(t *testing.T) {
			out := runBench(t, 2*time.Minute, bench, "-vw", vw, "-shares", "0.5", "-cap", "3s")
			row := lastRow(out, "50%")
			if row == nil {
				t.Fatalf("no 50%% row:\n%s", out)
			}
			if conn := row[len(row)-1]; conn != "kept" {
				t.Errorf("the capped side's connection: %s, want kept", conn)
			}
		})
	}
}
