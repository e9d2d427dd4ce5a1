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
	"github.com/vwlab/vw/internal/freeport"
	"github.com/vwlab/vw/internal/testutil"
)

// TestDemo runs scripts/demo.sh (what make demo runs after building) as a
// person would: the URL it prints plays video and audio in a browser, and
// one Ctrl-C (SIGINT to its process group, as a terminal sends) stops
// everything it started.
func TestDemo(t *testing.T) {
	relayPort := freePort(t)
	url := playDemo(t, fmt.Sprintf("RELAY_PORT=%d", relayPort))
	if want := fmt.Sprintf("http://localhost:%d/play/", relayPort); !strings.HasPrefix(url, want) {
		t.Errorf("the demo printed %s, want a page on %s", url, want)
	}
}

// TestDemoCluster: make demo CLUSTER=3 starts three clustered relays, vw
// stream pushing to the first, and the URL it prints, on the third, plays.
func TestDemoCluster(t *testing.T) {
	relayPort, clusterPort := freePorts(t, 3), freePorts(t, 3)
	url := playDemo(t, "CLUSTER=3", fmt.Sprintf("RELAY_PORT=%d", relayPort), fmt.Sprintf("CLUSTER_PORT=%d", clusterPort))
	if want := fmt.Sprintf("http://localhost:%d/play/", relayPort+2); !strings.HasPrefix(url, want) {
		t.Errorf("the demo printed %s, want a page on the third relay, %s", url, want)
	}
}

// freePorts returns the first of n consecutive loopback ports nobody
// listens on right now.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	p, err := freeport.Run(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// playDemo runs scripts/demo.sh with env, plays the URL it prints in
// Chromium, stops it with one Ctrl-C, and returns the URL.
func playDemo(t *testing.T, env ...string) string {
	t.Helper()
	testutil.NeedTool(t, "ffmpeg")
	testutil.NeedTool(t, "curl")
	testutil.NeedJSMpeg(t)
	b := browser.Start(t)
	cmd := exec.Command(filepath.Join("..", "..", "scripts", "demo.sh"))
	cmd.Env = append(append(os.Environ(), "VW="+vwBin, fmt.Sprintf("STREAM_PORT=%d", freePort(t))), env...)
	// Its own process group, as a terminal gives it; the helper kills the
	// whole group when the test ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	demo, out := testutil.StartReading(t, cmd)

	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u := strings.TrimSpace(sc.Text()); strings.HasPrefix(u, "http://") && strings.Contains(u, "/play/") {
				select {
				case urls <- u:
				default:
				}
			}
		}
	}()
	var url string
	select {
	case url = <-urls:
	case <-time.After(30 * time.Second):
		t.Fatalf("make demo printed no player URL within 30 s\n%s", demo.Output())
	}
	page := b.Open(url)
	page.WaitPlayer(30*time.Second, "played the demo's video and audio", func(p browser.Player) bool {
		return p.Frames > 50 && p.AudioFrames > 50
	})
	page.Screenshot("demo")

	if err := demo.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := demo.Wait(t, 10*time.Second); err != nil {
		t.Fatalf("demo exited with %v after Ctrl-C", err)
	}
	// Nothing it started is left: the process group is empty.
	testutil.Eventually(t, 5*time.Second, func() bool { return !demo.GroupAlive() },
		"processes of the demo are still running after Ctrl-C")
	return url
}
