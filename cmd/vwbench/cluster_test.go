package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestClusterRuns runs the cluster benchmark briefly against a vw built for
// the test: every figure comes out, and no message was lost.
func TestClusterRuns(t *testing.T) {
	out := runBench(t, 2*time.Minute, "cluster", "-vw", buildVW(t), "-short")
	for _, want := range []string{"publisher on A → viewers on B", "viewers on B (B's CPU)", "per watching relay", "cluster of one"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`messages lost over every phase\s+0\s`).MatchString(out) {
		t.Errorf("messages lost:\n%s", out)
	}
}
