package rules

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vwlab/vw/rwc"
)

// TestOneValidatorPerRule: every rule that Set refuses, Restore refuses too,
// and so does the state file's check at load (the file is moved aside); a
// rule Set accepts survives a save and a load. Set, Restore and the check
// share one validator per rule type, so no path lets in what another keeps
// out.
func TestOneValidatorPerRule(t *testing.T) {
	const url = "ws://127.0.0.1:1/in/x"
	streams := []struct {
		name string
		rule StreamRule
		want string
	}{
		{"no name", StreamRule{Feeds: []string{"a"}}, "stream name is empty"},
		{"name all", StreamRule{Stream: "all", Feeds: []string{"a"}}, "reserved"},
		{"name api", StreamRule{Stream: "api", Feeds: []string{"a"}}, "reserved for the control API"},
		{"bad name", StreamRule{Stream: "a b", Feeds: []string{"a"}}, "use 1 to 200"},
		{"no feeds", StreamRule{Stream: "s", Feeds: []string{}}, `"feeds" is empty`},
		{"bad feed", StreamRule{Stream: "s", Feeds: []string{"a//b"}}, "empty path segment"},
		{"feed twice", StreamRule{Stream: "s", Feeds: []string{"a", "/a"}}, "listed twice"},
	}
	dests := []struct {
		name string
		rule rwc.Rule
		want string
	}{
		{"blank id", rwc.Rule{Stream: "s", Destination: url, ID: " "}, `missing "id"`},
		{"id all", rwc.Rule{Stream: "s", Destination: url, ID: "all"}, "reserved"},
		{"no destination", rwc.Rule{Stream: "s", ID: "0"}, `missing "destination"`},
		{"no stream", rwc.Rule{Destination: url, ID: "0"}, "stream name is empty"},
		{"stream api", rwc.Rule{Stream: "api", Destination: url, ID: "0"}, "reserved for the control API"},
		{"http URL", rwc.Rule{Stream: "s", Destination: "http://relay/in/x", ID: "0"}, "ws:// or wss://"},
		{"password", rwc.Rule{Stream: "s", Destination: "ws://u:hunter2@relay/in/x", ID: "0"}, "user name or password"},
		{"file outside", rwc.Rule{Stream: "s", Destination: url, ID: "0", File: "../x.ts"}, ".."},
	}
	f := newFixture(t, Config{})
	ctx := context.Background()
	refusedEverywhere := func(t *testing.T, st State, set func() error, want string) {
		t.Helper()
		if err := set(); !isBadRule(err) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Set: %v, want a bad rule saying %q", err, want)
		}
		if err := f.rules.Restore(ctx, st); !isBadRule(err) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Restore: %v, want a bad rule saying %q", err, want)
		}
		if n := len(f.rules.Streams()) + len(f.rules.Destinations()); n != 0 {
			t.Fatalf("%d rules stored", n)
		}
		path := filepath.Join(t.TempDir(), "rules.json")
		if err := SaveState(path, st); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadState(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("LoadState: %v, want it to refuse saying %q", err, want)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatal("the refused state file was left in place")
		}
	}
	for _, tc := range streams {
		t.Run("stream/"+tc.name, func(t *testing.T) {
			st := State{Version: stateVersion, Streams: map[string][]string{tc.rule.Stream: tc.rule.Feeds}}
			refusedEverywhere(t, st, func() error { _, err := f.rules.SetStream(ctx, tc.rule); return err }, tc.want)
		})
	}
	for _, tc := range dests {
		t.Run("destination/"+tc.name, func(t *testing.T) {
			st := State{Version: stateVersion, Destinations: map[string]rwc.Rule{tc.rule.ID: tc.rule}}
			refusedEverywhere(t, st, func() error { _, err := f.rules.SetDestination(tc.rule, false); return err }, tc.want)
		})
	}

	// What Set accepts comes back whole from a saved file.
	if _, err := f.rules.SetStream(ctx, StreamRule{Stream: "/s", Feeds: []string{"/a", "b/c"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rules.SetDestination(rwc.Rule{Stream: "/s", Destination: url, ID: "0", File: "lab/s.ts"}, false); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.json")
	if err := SaveState(path, f.rules.Snapshot()); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(path); err != nil {
		t.Fatalf("a state of accepted rules does not load: %v", err)
	}
}

// TestDestinationOrigins: the apiRule cannot be set over the control API;
// an id older versions allowed is restored but not set anew.
func TestDestinationOrigins(t *testing.T) {
	f := newFixture(t, Config{APIRule: &rwc.Rule{Destination: "ws://127.0.0.1:1/bi/api"}})
	api := rwc.Rule{Stream: "x", Destination: "ws://evil.example/", ID: APIRuleID}
	if _, err := f.rules.SetDestination(api, true); err == nil || !strings.Contains(err.Error(), "Cannot modify apiRule") {
		t.Fatalf("apiRule over the control API: %v", err)
	}
	if d, _ := f.rules.Destination(APIRuleID); d.Destination != "ws://127.0.0.1:1/bi/api" || d.Stream != APIStream {
		t.Fatalf("apiRule changed: %+v", d)
	}
	old := rwc.Rule{Stream: "s", Destination: "ws://127.0.0.1:1/in/x", ID: "id with spaces"}
	if _, err := f.rules.SetDestination(old, false); err == nil {
		t.Fatal("set a destination id outside the alphabet")
	}
	st := State{Version: stateVersion, Destinations: map[string]rwc.Rule{old.ID: old}}
	if err := f.rules.Restore(context.Background(), st); err != nil {
		t.Fatalf("restoring an id older versions allowed: %v", err)
	}
}

func isBadRule(err error) bool {
	return errors.Is(err, ErrBadRule) || errors.Is(err, rwc.ErrInvalid)
}
