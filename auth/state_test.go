package auth_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/internal/testutil"
)

// TestDenyListKept: with a state file a deny outlives the Auth that took it
// (a relay restart), an entry leaves the file once its token would have
// expired, and a file that cannot be understood stops the start instead of
// letting every revoked token back in.
func TestDenyListKept(t *testing.T) {
	state := filepath.Join(t.TempDir(), "vw", "relay.json")
	c := newClock()
	start := func() *auth.Auth {
		t.Helper()
		a, err := auth.New(auth.Config{Secret: secret, StatePath: state, Now: c.Now}, testutil.Log(t))
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		return a
	}
	a := start()
	short := mint(t, a, "lab1/", "read", time.Hour)
	long := mint(t, a, "lab1/", "read", 48*time.Hour)
	longID := jtiOf(t, a, long)
	for _, tok := range []string{short, long} {
		g, err := a.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Deny(g.ID, g.Path, g.Expires); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v, want mode 0600", fi, err)
	}

	b := start() // the restart
	for _, tok := range []string{short, long} {
		if _, err := b.Verify(tok); err == nil || !strings.Contains(err.Error(), "denied") {
			t.Fatalf("after a restart a denied token verifies: %v", err)
		}
	}

	c.Advance(time.Hour + auth.Leeway + time.Second)
	start()
	var st struct {
		Denied []auth.Denial `json:"denied"`
	}
	raw, err := os.ReadFile(state)
	if err != nil || json.Unmarshal(raw, &st) != nil || len(st.Denied) != 1 || st.Denied[0].JTI != longID {
		t.Fatalf("after the short token's expiry the file holds %s (%v), want only the long one", raw, err)
	}

	for _, bad := range []string{"{", `{"version":2,"denied":[]}`, `{"version":1,"denied":[{"jti":"","path":"/","until":"2040-01-01T00:00:00Z"}]}`} {
		if err := os.WriteFile(state, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := auth.New(auth.Config{Secret: secret, StatePath: state, Now: c.Now}, nil)
		if err == nil || !strings.Contains(err.Error(), state) || !strings.Contains(err.Error(), "fix or remove it") {
			t.Fatalf("state file %q: %v, want an error naming the file", bad, err)
		}
	}
}

// TestDenyListUnwritable: a state file that cannot be written is an error
// at start, not a surprise at the first deny.
func TestDenyListUnwritable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := auth.New(auth.Config{Secret: secret, StatePath: filepath.Join(blocker, "relay.json")}, nil)
	if err == nil {
		t.Fatal("a state file under a regular file was accepted")
	}
}

func TestDefaultStatePath(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "/var/lib/vw-relay:/var/lib/other")
	if p := auth.DefaultStatePath(); p != "/var/lib/vw-relay/relay.json" {
		t.Fatalf("with STATE_DIRECTORY: %s", p)
	}
	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/op")
	if p := auth.DefaultStatePath(); p != "/home/op/.local/state/vw/relay.json" {
		t.Fatalf("without: %s", p)
	}
}
