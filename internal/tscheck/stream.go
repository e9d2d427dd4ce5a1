package tscheck

import (
	"os"
	"path/filepath"
	"testing"
)

// CheckStream checks a stream a viewer received, held in memory, as a user
// would a recording of it: CheckFile's checks, and no PES cut short (a
// relay that drops must drop whole PES). It returns the packet walk's
// report for further checks.
func CheckStream(t testing.TB, b []byte, want Want) *Report {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stream.ts")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := CheckFile(t, path, want)
	for _, e := range r.ES {
		if e.CutPES > 0 {
			t.Errorf("PID %#x: %d PES cut", e.PID, e.CutPES)
		}
	}
	return r
}
