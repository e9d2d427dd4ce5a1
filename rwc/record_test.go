package rwc

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testrelay"
	"github.com/vwlab/vw/internal/testutil"
)

// umask returns the process's file mode creation mask.
func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

// A recording and the folders made for it are not readable by others.
func TestRecordingPermissions(t *testing.T) {
	f := newFixture(t, Config{})
	f.set(Rule{Stream: "cam", Destination: closedURL(t), ID: "0", File: "lab1/front/cam.ts"})
	for path, want := range map[string]os.FileMode{
		f.dir:                                 0o750,
		filepath.Join(f.dir, "lab1"):          0o750,
		filepath.Join(f.dir, "lab1", "front"): 0o750,
		filepath.Join(f.dir, "lab1", "front/cam.ts"): 0o640,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want&^umask() {
			t.Errorf("%s: mode %v, want %v", path, got, want&^umask())
		}
	}
}

// A recording is appended to: a rule set again (as after a restart) adds to
// the file rather than wiping it.
func TestRecordingAppends(t *testing.T) {
	f := newFixture(t, Config{FlushInterval: time.Hour})
	rule := Rule{Stream: "cam", Destination: closedURL(t), ID: "0", File: "cam.ts"}
	var want []byte
	for _, b := range []byte("AB") {
		f.set(rule)
		d := bytes.Repeat([]byte{b}, 188*10)
		f.pub("cam", testrelay.Msg{Data: d})
		want = append(want, d...)
		if !f.r.Delete("0") { // flushes and closes the file
			t.Fatal("Delete found no rule")
		}
	}
	got, err := os.ReadFile(filepath.Join(f.dir, "cam.ts"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes (%v), want both runs' %d", len(got), err, len(want))
	}
}

// setWithin calls Set, failing the test if it does not return promptly:
// opening a recording must never block.
func setWithin(t *testing.T, f *fixture, rule Rule) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f.r.Set(rule) }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("Set(%+v) blocked", rule)
		return nil
	}
}

// Only regular files inside the folder are recorded to: a FIFO (with or
// without a reader), a socket, a folder, a device, a symlink or linked
// folder inside the recordings folder that leads out of it, a symlink loop
// and a name the system cannot hold are each ErrInvalid (400), at once, and
// store nothing; nothing is created outside. A symlink that stays inside
// is followed.
func TestRecordingRefusesNonFiles(t *testing.T) {
	f := newFixture(t, Config{})
	if err := os.MkdirAll(f.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	at := func(name string) string { return filepath.Join(f.dir, name) }
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(syscall.Mkfifo(at("fifo.ts"), 0o600))
	must(syscall.Mkfifo(at("read-fifo.ts"), 0o600))
	reader, err := os.OpenFile(at("read-fifo.ts"), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	must(err)
	defer reader.Close()
	ln, err := net.Listen("unix", at("socket.ts"))
	must(err)
	defer ln.Close()
	must(os.Mkdir(at("folder.ts"), 0o750))
	must(os.Symlink(filepath.Join(outside, "x.ts"), at("out.ts")))
	must(os.Symlink(outside, at("outdir")))
	must(os.Symlink("loop.ts", at("loop.ts")))
	must(os.Symlink("real.ts", at("link.ts")))
	cases := map[string]string{
		"fifo.ts":                       "FIFO",
		"read-fifo.ts":                  "FIFO",
		"socket.ts":                     "socket",
		"folder.ts":                     "folder",
		"out.ts":                        "escapes",
		"loop.ts":                       "symbolic links",
		"outdir/x.ts":                   "escapes",
		"outdir/sub/x.ts":               "escapes",
		strings.Repeat("n", 300):        "file name too long",
		"a/" + strings.Repeat("n", 300): "file name too long",
	}
	if syscall.Mknod(at("null.ts"), syscall.S_IFCHR|0o600, 1<<8|3) == nil {
		cases["null.ts"] = "device"
	}
	for name, why := range cases {
		t.Run(name[:min(len(name), 20)], func(t *testing.T) {
			err := setWithin(t, f, Rule{Stream: "cam", Destination: closedURL(t), ID: "0", File: name})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), why) {
				t.Fatalf("Set with file %q: %v, want ErrInvalid saying %q", name, err, why)
			}
			if _, ok := f.r.Get("0"); ok {
				t.Fatal("the rule was stored")
			}
		})
	}
	if es, _ := os.ReadDir(outside); len(es) != 0 {
		t.Fatalf("something was created outside the recordings folder: %v", es)
	}
	f.set(Rule{Stream: "cam", Destination: closedURL(t), ID: "0", File: "link.ts"})
	f.pub("cam", testrelay.Msg{Data: []byte("via the link")})
	f.r.Delete("0")
	if got, _ := os.ReadFile(at("real.ts")); string(got) != "via the link" {
		t.Fatalf("symlink inside the folder: real.ts holds %q", got)
	}
}

// A rule restored at start whose recording cannot be opened is installed
// without it: its stream still reaches the relay, RecordingError says why,
// and setting the rule again once the file can be opened records.
func TestRestoreWithoutRecording(t *testing.T) {
	rl := testrelay.New(t, testrelay.Options{})
	f := newFixture(t, Config{FlushInterval: time.Hour})
	if err := os.MkdirAll(f.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(f.dir, "cam.ts")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	rule := Rule{Stream: "cam", Destination: rl.URL(), ID: "0", File: "cam.ts"}
	if err := f.r.Restore(rule); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got, ok := f.r.Get("0"); !ok || got != rule {
		t.Fatalf("restored rule %+v, %v", got, ok)
	}
	if e := f.r.RecordingError("0"); !strings.Contains(e, "FIFO") {
		t.Fatalf("RecordingError %q", e)
	}
	f.waitConnected("0", rl.URL())
	f.pub("cam", testrelay.Msg{Data: []byte("live")})
	testutil.Eventually(t, wait, func() bool { return rl.Count() == 1 }, "the restored rule does not stream")

	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	f.set(rule)
	if e := f.r.RecordingError("0"); e != "" {
		t.Fatalf("RecordingError after the file was fixed: %q", e)
	}
	f.pub("cam", testrelay.Msg{Data: []byte("recorded")})
	f.r.Delete("0")
	if got, _ := os.ReadFile(fifo); string(got) != "recorded" {
		t.Fatalf("recording holds %q", got)
	}
}
