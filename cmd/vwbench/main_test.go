package main

import (
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vwlab/vw/internal/testutil"
)

// The smoke tests below run each benchmark with -short (which vwbench all
// -short passes to every one) and smaller knobs of their own, which win.

// TestMain lets the test binary stand in for vwbench when fanout starts its
// servers as children (VWBENCH_CHILD is set for them).
func TestMain(m *testing.M) {
	if os.Getenv("VWBENCH_CHILD") != "" {
		if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString("vwbench child: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestFanoutRuns runs a tiny fanout of both loads against both servers:
// the table has a row for each, every viewer got every message of the
// window, and nobody was dropped.
func TestFanoutRuns(t *testing.T) {
	out := runBench(t, 2*time.Minute, "fanout", "-short", "-viewers", "5", "-rate", "1e6", "-duration", "500ms", "-warmup", "200ms")
	for _, load := range []string{"vw stream", "16 KiB"} {
		for _, server := range []string{"floor", "relay"} {
			var row []string
			for _, line := range strings.Split(out, "\n") {
				rest, ok := strings.CutPrefix(strings.TrimSpace(line), load)
				if f := strings.Fields(rest); ok && len(f) > 10 && f[1] == server {
					row = f
				}
			}
			if row == nil {
				t.Fatalf("no %s row for %s", server, load)
			}
			// viewers server delivered … lost msgs, dropped viewers
			if row[0] != "5" || row[2] == "0.0" {
				t.Errorf("%s, %s: %s viewers received %s MB, want 5 and some", load, server, row[0], row[2])
			}
			if lost, dropped := row[len(row)-2], row[len(row)-1]; lost != "0" || dropped != "0" {
				t.Errorf("%s, %s: %s messages lost, %s viewers dropped, want none", load, server, lost, dropped)
			}
		}
	}
}

// TestBenchFlagsShort: -short sets each flag's short value unless the
// flag was given, and leaves the defaults alone without -short.
func TestBenchFlagsShort(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		want, want2 string
	}{
		{nil, "long", "long2"},
		{[]string{"-short"}, "short", "short2"},
		{[]string{"-short", "-a", "given"}, "given", "short2"},
		{[]string{"-a", "given", "-short"}, "given", "short2"},
	} {
		fs := newBenchFlags("x", io.Discard)
		a := fs.String("a", "long", "")
		b := fs.String("b", "long2", "")
		fs.Short("a", "short")
		fs.Short("b", "short2")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if *a != tc.want || *b != tc.want2 {
			t.Errorf("%q: a=%q b=%q, want %q %q", tc.args, *a, *b, tc.want, tc.want2)
		}
	}
	fs := newBenchFlags("x", io.Discard)
	fs.Int("n", 1, "")
	fs.Short("n", "many")
	if err := fs.Parse([]string{"-short"}); err == nil {
		t.Error("a bad short value went unnoticed")
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut strings.Builder
	if err := run(context.Background(), []string{"nope"}, os.Getenv, strings.NewReader(""), &out, &errOut); err == nil {
		t.Fatal("an unknown command ran")
	}
	if !strings.Contains(errOut.String(), "usage") {
		t.Fatal("an unknown command does not print the usage")
	}
}

// TestPathRuns runs the path benchmarks briefly against a vw built for the
// test: every figure comes out, and no packet was lost or doubled.
func TestPathRuns(t *testing.T) {
	out := runBench(t, 2*time.Minute, "path", "-short", "-vw", buildVW(t), "-duration", "500ms", "-mutes", "2", "-swaps", "2", "-outages", "100ms", "-repeats", "2")
	for _, want := range []string{"feed direct", "through the muxer", "mute:", "unmute:", "hot swap", "reconnect after a 100ms outage"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q row", want)
		}
	}
	if strings.Count(out, " 0 lost") != 2 || !strings.Contains(out, "0 packets lost, 0 twice") {
		t.Errorf("packets lost or doubled:\n%s", out)
	}
	// An audio packet while muted is a broken mute; a run that could check
	// no mute at all proves nothing.
	if m := regexp.MustCompile(`(\d+) audio packets while muted \((\d+) of`).FindStringSubmatch(out); m == nil || m[1] != "0" || m[2] == "0" {
		t.Errorf("audio while muted, or no mute checked:\n%s", out)
	}
}

// TestChurnRuns runs a short churn: goroutines and topics come back.
func TestChurnRuns(t *testing.T) {
	out := runBench(t, 2*time.Minute, "churn", "-short", "-cycles", "200")
	if !strings.Contains(out, "hub topics left: 0") {
		t.Errorf("topics left:\n%s", out)
	}
}

// TestFirstFrameRuns runs the first-frame benchmark with one load per
// player and codec against a vw built for the test: every figure comes out,
// for MPEG-1 and for H.264 (each load checks the page played its stream with
// that codec's player).
func TestFirstFrameRuns(t *testing.T) {
	testutil.NeedTool(t, "ffmpeg")
	testutil.NeedTool(t, "chromium")
	// Without the player libraries the pages load but never paint.
	testutil.NeedJSMpeg(t)
	testutil.NeedMSE(t)
	out := runBench(t, 2*time.Minute, "firstframe", "-vw", buildVW(t), "-loads", "1", "-h264-loads", "1")
	for _, want := range []string{"first picture after page load, via the relay", "behind live 3s after page load, on vw stream's preview", "relay memory per topic"} {
		var row []string
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, want) {
				row = strings.Fields(strings.TrimPrefix(line, want))
			}
		}
		// MPEG-1 median and worst, then H.264's: "681 ms 891 ms 420 ms 600 ms …";
		// the memory row has one figure per codec: "410 KiB 300 KiB …".
		switch {
		case row == nil:
			t.Errorf("no %q row", want)
		case want == "relay memory per topic":
			if len(row) < 8 || row[7] != "KiB" {
				t.Errorf("%q: no figure for each codec: %q", want, row)
			}
		case len(row) < 8 || row[7] != "ms":
			t.Errorf("%q: no H.264 figures: %q", want, row)
		}
	}
}
