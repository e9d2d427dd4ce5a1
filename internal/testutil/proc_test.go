package testutil

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcAlive checks that a process that has exited is not alive, though
// nobody but the helper called Wait: the check the old alive() could not
// make (signal 0 succeeds on a zombie).
func TestProcAlive(t *testing.T) {
	p := Start(t, exec.Command("sleep", "30"))
	if !p.Alive() {
		t.Fatal("a sleeping process is not alive")
	}
	p.Kill()
	if p.Alive() {
		t.Fatal("a killed process is alive")
	}

	q := Start(t, exec.Command("sh", "-c", "echo out; echo err >&2; exit 3"))
	Eventually(t, 10*time.Second, func() bool { return !q.Alive() }, "a process that exited is still alive")
	if q.ExitCode() != 3 || q.Err() == nil {
		t.Fatalf("exit code %d, err %v; want 3", q.ExitCode(), q.Err())
	}
	if out := q.Output(); !strings.Contains(out, "out\n") || !strings.Contains(out, "err\n") {
		t.Fatalf("output %q, want both streams", out)
	}
}

// TestProcStop checks both ways a stop ends: the process obeys the signal,
// or it is killed after the grace and Stop says so.
func TestProcStop(t *testing.T) {
	p := Start(t, exec.Command("sleep", "30"))
	if err := p.Stop(syscall.SIGTERM, 10*time.Second); err == nil || p.ExitCode() != -1 {
		t.Fatalf("sleep after SIGTERM: %v, exit code %d; want ended by the signal", err, p.ExitCode())
	}
	stubborn := Start(t, exec.Command("sh", "-c", `trap "" TERM; echo ready; while :; do sleep 1; done`))
	Eventually(t, 10*time.Second, func() bool { return strings.Contains(stubborn.Output(), "ready") }, "the shell did not start")
	err := stubborn.Stop(syscall.SIGTERM, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed") || stubborn.Alive() {
		t.Fatalf("a process ignoring SIGTERM: %v, alive %v; want killed", err, stubborn.Alive())
	}
}

func TestStartReading(t *testing.T) {
	p, r := StartReading(t, exec.Command("sh", "-c", "printf hello; exit 0"))
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := p.Wait(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestFeedIsTheREADMEs checks that the feed launcher runs the README's
// command lines: their output options verbatim, in one process for both.
func TestFeedIsTheREADMEs(t *testing.T) {
	camera, mic := READMEFeedLines(t)
	rf, err := readmeFeeds()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		feed Feed
		from []string
	}{
		{Feed{Video: true, Out: "http://h/ts/video0"}, []string{camera}},
		{Feed{Audio: true, Out: "http://h/ts/audio0"}, []string{mic}},
		{Feed{Video: true, Audio: true, Out: "pipe:1", Extra: []string{"-t", "1"}}, []string{camera, mic}},
		{Feed{Video: true, Audio: true, H264: true, Out: "pipe:1"}, []string{rf.h264.video.line, rf.h264.audio.line}},
	} {
		args := strings.Join(tc.feed.Args(t), " ")
		for _, line := range tc.from {
			f, err := cutFeed(line)
			if err != nil {
				t.Fatal(err)
			}
			if opts := strings.Join(append(slices.Clone(f.codec), f.container...), " "); !strings.Contains(args, strings.Join(f.codec, " ")) || !strings.Contains(args, strings.Join(f.container, " ")) {
				t.Errorf("ffmpeg %s\nlacks the README's %s", args, opts)
			}
		}
		if !strings.HasSuffix(args, strings.Join(tc.feed.Extra, " ")+" "+tc.feed.Out) || !strings.Contains(args, "-re -f lavfi -i ") {
			t.Errorf("ffmpeg %s: want the lavfi stand-ins and to end with %v %s", args, tc.feed.Extra, tc.feed.Out)
		}
	}
}

// TestFeedRuns runs the README's two feeds of each family in one process
// for a moment: ffmpeg takes the flags and writes MPEG-TS.
func TestFeedRuns(t *testing.T) {
	for _, h264 := range []bool{false, true} {
		p, r := StartFeedReading(t, Feed{Video: true, Audio: true, H264: h264, Extra: []string{"-t", "0.5"}})
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(t, 30*time.Second); err != nil {
			t.Fatalf("ffmpeg (H.264: %v): %v\n%s", h264, err, p.Output())
		}
		if len(b) < 10*188 || len(b)%188 != 0 || b[0] != 0x47 || b[188] != 0x47 {
			t.Fatalf("ffmpeg (H.264: %v) wrote %d bytes, not MPEG-TS", h264, len(b))
		}
	}
}

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(r.Header.Get("Authorization") + "|" + r.Header.Get("X-A") + "|" + body.String()))
	}))
	defer srv.Close()
	got := Do(t, Req{Method: "PUT", URL: srv.URL, Body: "b", Token: "tok", Header: []string{"X-A", "a"}})
	if got.Status != http.StatusTeapot || got.Body != "Bearer tok|a|b" || got.Header.Get("X-Method") != "PUT" {
		t.Fatalf("%+v", got)
	}
	if _, err := TryDo(Req{URL: "http://127.0.0.1:1/"}); err == nil {
		t.Fatal("no error from a closed port")
	}
}
