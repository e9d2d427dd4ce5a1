package cluster

import (
	"strings"
	"testing"

	"github.com/vwlab/vw/internal/testutil"
)

// TestNewRefusesNegative: a zero Linger or Report takes its default, a
// negative one is an error that names it.
func TestNewRefusesNegative(t *testing.T) {
	cfg := Config{Node: "a", Listen: "127.0.0.1:0", Secret: testSecret}
	cl, err := New(cfg, testutil.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	if cl.cfg.Linger != DefaultLinger || cl.cfg.Report != DefaultReport {
		t.Errorf("zero settings: linger %v, report %v, want the defaults", cl.cfg.Linger, cl.cfg.Report)
	}
	cfg.Report = -1
	if _, err := New(cfg, testutil.Log(t)); err == nil || !strings.Contains(err.Error(), "Report") {
		t.Errorf("a negative Report: %v, want an error naming it", err)
	}
}
