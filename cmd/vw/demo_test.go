package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// TestDemo runs scripts/demo.sh (what make demo runs after building) as a
// person would: the URL it prints plays video and audio in a browser, and
// one Ctrl-C (SIGINT to its process group, as a terminal sends) stops
// everything it started.
func TestDemo(t *testing.T) {
	testutil.NeedTool(t, "ffmpeg")
	testutil.NeedTool(t, "curl")
	b := browser.Start(t)
	relayPort, streamPort := freePort(t), freePort(t)
	cmd := exec.Command(filepath.Join("..", "..", "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(), "VW="+vwBin, fmt.Sprintf("RELAY_PORT=%d", relayPort), fmt.Sprintf("STREAM_PORT=%d", streamPort))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})

	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			if u := strings.TrimSpace(l); strings.HasPrefix(u, "http://") && strings.Contains(u, "/play/") {
				urls <- u
			}
		}
		done <- cmd.Wait()
	}()
	var url string
	select {
	case url = <-urls:
	case <-time.After(30 * time.Second):
		t.Fatal("make demo printed no player URL within 30 s")
	}
	page := b.Open(url)
	page.WaitPlayer(30*time.Second, "played the demo's video and audio", func(p browser.Player) bool {
		return p.Frames > 50 && p.AudioFrames > 50
	})
	page.Screenshot("demo")

	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo exited with %v after Ctrl-C", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the demo did not stop within 10 s of Ctrl-C")
	}
	// Nothing it started is left: the process group is empty.
	testutil.Eventually(t, 5*time.Second, func() bool {
		return syscall.Kill(-pgid, 0) != nil
	}, "processes of the demo are still running after Ctrl-C")
}
