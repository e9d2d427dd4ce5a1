package crossbar

import (
	"testing"

	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

func TestPSICacheFamily(t *testing.T) {
	for _, tc := range []struct {
		h264 bool
		want ts.Family
	}{{false, ts.FamilyMPEG1}, {true, ts.FamilyH264}} {
		var c psiCache
		if f := c.family(); f != ts.FamilyNone {
			t.Fatalf("before any PMT: %v", f)
		}
		s := tscheck.NewSynth(true, 0)
		s.H264 = tc.h264
		c.observe(s.Append(nil, 2))
		if f := c.family(); f != tc.want {
			t.Errorf("H.264 %v: family %v, want %v", tc.h264, f, tc.want)
		}
		c.reset()
		if f := c.family(); f != ts.FamilyNone {
			t.Errorf("after reset: %v", f)
		}
	}
}
