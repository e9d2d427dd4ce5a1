package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildVW builds cmd/vw for a test.
func buildVW(t *testing.T) string {
	t.Helper()
	vw := filepath.Join(t.TempDir(), "vw")
	if out, err := exec.Command("go", "build", "-o", vw, "../vw").CombinedOutput(); err != nil {
		t.Fatalf("building vw: %v\n%s", err, out)
	}
	return vw
}

// runBench runs one vwbench command with its arguments, failing the test
// with its stderr if it fails, and returns (and logs) what it printed.
func runBench(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errOut strings.Builder
	if err := run(ctx, args, os.Getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("%s: %v\nstderr: %s", args[0], err, errOut.String())
	}
	t.Log("\n" + out.String())
	return out.String()
}

// lastRow is the fields of the last line of out whose first field is
// first, or nil.
func lastRow(out, first string) []string {
	var row []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == first {
			row = f
		}
	}
	return row
}
