package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
)

// example runs a script from examples/ with env added, as a lab hoster
// would, and returns its output.
func example(t *testing.T, script string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join("..", "..", "examples", script), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
	return string(out)
}

// startExample starts a long-running example script (a feed) until the test
// ends.
func startExample(t *testing.T, script string, env []string) *exec.Cmd {
	t.Helper()
	testutil.NeedTool(t, "ffmpeg")
	cmd := exec.Command(filepath.Join("..", "..", "examples", script))
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// TestExamples runs the lab host's scripts against a real vw stream and
// relay, with lavfi sources standing in for the camera and microphone: the
// feeds arrive, rules.sh sets up a stream that reaches the relay, and
// mute.sh mutes and unmutes it.
func TestExamples(t *testing.T) {
	testutil.NeedTool(t, "curl")
	relay := relayProc(t)
	stream := streamProc(t)
	env := []string{"VW=http://" + stream.addr, "RELAY=ws://" + relay.addr, "LAB=lab1", "STREAM=front"}

	cam := startExample(t, "camera.sh", append(env, "INPUT=-re -f lavfi -i testsrc=size=320x240:rate=25", "SIZE=320x240"))
	mic := startExample(t, "microphone.sh", append(env, "INPUT=-re -f lavfi -i sine=frequency=440:sample_rate=44100"))
	out := example(t, "rules.sh", env)
	if !strings.Contains(out, `{"stream":"front","feeds":["video0","audio0"]}`) ||
		!strings.Contains(out, `"destination":"ws://`+relay.addr+`/in/lab1/front"`) {
		t.Fatalf("rules.sh printed:\n%s", out)
	}
	v := watch(t, relay, "/out/lab1/front")
	v.grows(t, 50_000, 15*time.Second, "the example feeds at the relay")

	if out := example(t, "mute.sh", env, "on"); strings.TrimSpace(out) != `{"stream":"front","feeds":["video0"]}` {
		t.Fatalf("mute.sh on: %s", out)
	}
	if out := example(t, "mute.sh", env, "off"); strings.TrimSpace(out) != `{"stream":"front","feeds":["video0","audio0"]}` {
		t.Fatalf("mute.sh off: %s", out)
	}
	cmd := exec.Command(filepath.Join("..", "..", "examples", "mute.sh"), "sideways")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "usage") {
		t.Fatalf("mute.sh with a bad argument: %v %s", err, out)
	}
	v.grows(t, 20_000, 10*time.Second, "the stream after mute and unmute")
	if !alive(cam) || !alive(mic) {
		t.Fatal("a feed script died")
	}
}

// TestSystemdUnits checks the example units with systemd-analyze verify,
// pointing them at this build's binary and scripts.
func TestSystemdUnits(t *testing.T) {
	analyze := testutil.NeedTool(t, "systemd-analyze")
	dir := t.TempDir()
	abs, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob(filepath.Join(abs, "systemd", "*.service"))
	if len(units) < 4 {
		t.Fatalf("found %d units", len(units))
	}
	var names []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "/usr/local/bin/vw", vwBin)
		s = strings.ReplaceAll(s, "/usr/local/share/vw", abs)
		name := filepath.Base(u)
		if strings.HasSuffix(name, "@.service") {
			name = strings.Replace(name, "@.service", "@video0.service", 1)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, names...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	// Requires= on a unit not installed here is the one complaint expected.
	var problems []string
	for _, l := range lines(string(out)) {
		if !strings.Contains(l, "vw-stream.service") || !strings.Contains(l, "not found") {
			problems = append(problems, l)
		}
	}
	if len(problems) > 0 {
		t.Fatalf("systemd-analyze verify (%v):\n%s", err, strings.Join(problems, "\n"))
	}
}
