package api

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/vwlab/vw/rwc"
)

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deep", "rules.json")
	f := newFixture(t, Config{}, &rwc.Rule{Destination: "ws://127.0.0.1:1/bi/api"})
	ctx := context.Background()
	if _, err := f.rules.SetStream(ctx, StreamRule{Stream: "front", Feeds: []string{"video0", "audio0"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rules.SetDestination(rwc.Rule{Stream: "front", Destination: "ws://127.0.0.1:1/in/front", ID: "0", Token: "tok", File: "front.ts"}, false); err != nil {
		t.Fatal(err)
	}
	want := f.rules.Snapshot()
	if _, ok := want.Destinations[APIRuleID]; ok {
		t.Fatal("the apiRule was saved; it must come from VW_API at each start")
	}
	if err := SaveState(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded %+v, %v; want %+v", got, err, want)
	}
	g := newFixture(t, Config{}, nil)
	if err := g.rules.Restore(ctx, got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.rules.Snapshot(), want) {
		t.Fatalf("restored %+v, want %+v", g.rules.Snapshot(), want)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.tmp-*"))
	if len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestStateMissingIsEmpty(t *testing.T) {
	st, err := LoadState(filepath.Join(t.TempDir(), "none.json"))
	if err != nil || len(st.Streams)+len(st.Destinations) != 0 {
		t.Fatalf("missing file: %+v, %v", st, err)
	}
}

// TestStateCorruptMovedAside checks that a file vw cannot use is kept, under
// a new name the error gives, and never silently replaced.
func TestStateCorruptMovedAside(t *testing.T) {
	for _, c := range []struct{ name, content string }{
		{"truncated", `{"version":1,"streams":{"a":["b"`},
		{"not json", "\x00\x01garbage"},
		{"wrong version", `{"version":99}`},
		{"bad name", `{"version":1,"streams":{"a b":["c"]}}`},
		{"mismatched id", `{"version":1,"destinations":{"0":{"stream":"s","destination":"ws://h/x","id":"1"}}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "rules.json")
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := LoadState(path)
			if err == nil {
				t.Fatalf("loaded %+v from a corrupt file", st)
			}
			if _, serr := os.Stat(path); !os.IsNotExist(serr) {
				t.Fatal("corrupt file left in place")
			}
			aside, _ := filepath.Glob(filepath.Join(dir, "rules.json.bad-*"))
			if len(aside) != 1 || !strings.Contains(err.Error(), aside[0]) {
				t.Fatalf("error %q does not name the file kept aside %v", err, aside)
			}
			if b, _ := os.ReadFile(aside[0]); string(b) != c.content {
				t.Fatal("the file kept aside is not the original")
			}
		})
	}
}

// TestRestoreAllOrNothing: a state whose last rule is refused installs no
// rule at all.
func TestRestoreAllOrNothing(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	st := State{Version: stateVersion,
		Streams: map[string][]string{"front": {"video0"}},
		Destinations: map[string]rwc.Rule{
			"0": {Stream: "front", Destination: "ws://127.0.0.1:1/in/front", ID: "0"},
			"1": {Stream: "front", Destination: "http://not-a-websocket/", ID: "1"},
		}}
	if err := f.rules.Restore(context.Background(), st); err == nil {
		t.Fatal("restored a state with a bad destination")
	}
	if s := f.rules.Snapshot(); len(s.Streams)+len(s.Destinations) != 0 {
		t.Fatalf("partial restore left %+v", s)
	}
}

// TestRestoreWithoutRecording: a saved rule whose recording cannot be opened
// at start (here a FIFO now sits at its name) is restored without it; its
// listing says why (recording_error); the other rules are restored.
func TestRestoreWithoutRecording(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	if err := syscall.Mkfifo(filepath.Join(f.recordings, "bad.ts"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := State{Version: stateVersion,
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
	f := newFixture(t, Config{}, nil)
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
