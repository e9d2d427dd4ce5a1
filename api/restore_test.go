package api

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

// TestRestoreWithoutRecording: a saved rule whose recording cannot be opened
// at start (here a FIFO now sits at its name) is restored without it; its
// listing says why (recording_error); the other rules are restored.
func TestRestoreWithoutRecording(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	if err := syscall.Mkfifo(filepath.Join(f.recordings, "bad.ts"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := rules.State{Version: 1,
		Streams: map[string][]string{"front": {"video0"}},
		Destinations: map[string]rwc.Rule{
			"0": {Stream: "front", Destination: "ws://127.0.0.1:1/in/front", ID: "0", File: "bad.ts"},
			"1": {Stream: "front", Destination: "ws://127.0.0.1:1/in/back", ID: "1", File: "good.ts"},
		}}
	if err := f.rules.Restore(context.Background(), st); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if got := f.rules.Snapshot(); !reflect.DeepEqual(got, st) {
		t.Fatalf("restored %+v, want %+v (the file kept in the rule)", got, st)
	}
	status, body := f.do(t, "GET", "/api/destinations/0", "")
	want := `{"stream":"front","destination":"ws://127.0.0.1:1/in/front","id":"0","file":"bad.ts","recording_error":"invalid destination rule: file \"bad.ts\" is a FIFO or socket, not a regular file"}`
	if status != 200 || body != want {
		t.Fatalf("listing: %d %s\nwant %s", status, body, want)
	}
	if status, body := f.do(t, "GET", "/api/destinations/1", ""); status != 200 || strings.Contains(body, "recording_error") {
		t.Fatalf("the other rule: %d %s", status, body)
	}
	if _, err := os.Stat(filepath.Join(f.recordings, "good.ts")); err != nil {
		t.Fatalf("the other rule does not record: %v", err)
	}
}

// TestRefusedFileIs400: every file vw stream will not record to is the
// rule's fault, a 400 with the reason, never a 500.
func TestRefusedFileIs400(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	outside := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(f.recordings, "fifo.ts"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(f.recordings, "out")); err != nil {
		t.Fatal(err)
	}
	for file, reason := range map[string]string{
		"fifo.ts":                "FIFO",
		"out/x.ts":               "escapes",
		strings.Repeat("n", 300): "too long",
	} {
		body := `{"stream":"s","destination":"ws://127.0.0.1:1/in/x","id":"0","file":"` + file + `"}`
		status, got := f.do(t, "POST", "/api/destinations", body, "Content-Type", "application/json")
		if status != 400 || !strings.Contains(got, reason) {
			t.Fatalf("file %.20s: %d %s, want 400 saying %q", file, status, got, reason)
		}
	}
	if len(f.rules.Destinations()) != 0 {
		t.Fatal("a refused rule was stored")
	}
}
