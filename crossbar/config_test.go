package crossbar

import (
	"strings"
	"testing"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
)

// TestNewRefusesNegative: a zero setting takes its default, a negative one
// is an error that names it (the one constructor shape), except where a
// negative value has a meaning of its own.
func TestNewRefusesNegative(t *testing.T) {
	s, err := New(Config{}, hub.New(), testutil.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Queue != DefaultQueue || s.cfg.PingInterval != DefaultPingInterval {
		t.Errorf("zero settings: queue %d, ping %v, want the defaults", s.cfg.Queue, s.cfg.PingInterval)
	}
	s.Close()
	if _, err := New(Config{Queue: -1, HandshakeTimeout: -1}, hub.New(), testutil.Log(t)); err == nil ||
		!strings.Contains(err.Error(), "Queue is -1") || !strings.Contains(err.Error(), "HandshakeTimeout") {
		t.Errorf("negative settings: %v, want an error naming Queue and HandshakeTimeout", err)
	}
	s, err = New(Config{MaxDelay: -1, CacheBytes: -1}, hub.New(), testutil.Log(t))
	if err != nil {
		t.Fatalf("a negative MaxDelay (off) or CacheBytes (PAT/PMT only): %v", err)
	}
	s.Close()
}
