package rules

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vwlab/vw/rwc"
)

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deep", "rules.json")
	f := newFixture(t, Config{APIRule: &rwc.Rule{Destination: "ws://127.0.0.1:1/bi/api"}})
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
	g := newFixture(t, Config{})
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
	f := newFixture(t, Config{})
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
