package statefile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDefaultPath(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "/var/lib/vw:/var/lib/other")
	if got := DefaultPath("rules.json"); got != "/var/lib/vw/rules.json" {
		t.Errorf("StateDirectory: %s", got)
	}
	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("XDG_STATE_HOME", "/home/lab/.state")
	if got := DefaultPath("relay.json"); got != "/home/lab/.state/vw/relay.json" {
		t.Errorf("XDG: %s", got)
	}
}

// TestWrite: the file holds what was written, 0600 in a 0700 folder made
// for it, and no temporary file is left.
func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "deep")
	path := filepath.Join(dir, "rules.json")
	for _, b := range []string{"first\n", "second\n"} {
		if err := Write(path, []byte(b)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != b {
			t.Fatalf("read %q, want %q", got, b)
		}
	}
	fi, _ := os.Stat(path)
	di, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("modes %v, %v", fi.Mode(), di.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
