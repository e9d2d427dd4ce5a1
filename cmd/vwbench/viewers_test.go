package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
)

// TestViewersRuns runs the viewer delay benchmark once, briefly, against a
// vw built for the test: its row comes out, and the capped viewer kept its
// connection.
func TestViewersRuns(t *testing.T) {
	testutil.NeedTool(t, "ffmpeg")
	vw := filepath.Join(t.TempDir(), "vw")
	if out, err := exec.Command("go", "build", "-o", vw, "../vw").CombinedOutput(); err != nil {
		t.Fatalf("building vw: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut strings.Builder
	if err := run(ctx, []string{"viewers", "-vw", vw, "-shares", "0.5", "-cap", "3s"}, os.Getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("viewers: %v\nstderr: %s", err, errOut.String())
	}
	t.Log("\n" + out.String())
	var row []string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "50%" {
			row = f
		}
	}
	if row == nil {
		t.Fatalf("no 50%% row:\n%s", out.String())
	}
	if conn := row[len(row)-1]; conn != "kept" {
		t.Errorf("the capped viewer's connection: %s, want kept", conn)
	}
}
