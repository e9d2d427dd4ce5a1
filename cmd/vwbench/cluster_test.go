package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestClusterRuns runs the cluster benchmark briefly against a vw built for
// the test: every figure comes out, and no message was lost.
func TestClusterRuns(t *testing.T) {
	vw := filepath.Join(t.TempDir(), "vw")
	if out, err := exec.Command("go", "build", "-o", vw, "../vw").CombinedOutput(); err != nil {
		t.Fatalf("building vw: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut strings.Builder
	if err := run(ctx, []string{"cluster", "-vw", vw, "-short"}, os.Getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("cluster: %v\nstderr: %s", err, errOut.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"publisher on A → viewers on B", "viewers on B (B's CPU)", "per watching relay", "cluster of one"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
	if !regexp.MustCompile(`messages lost over every phase\s+0\s`).MatchString(out.String()) {
		t.Errorf("messages lost:\n%s", out.String())
	}
}
