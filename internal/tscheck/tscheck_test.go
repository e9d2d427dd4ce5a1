package tscheck

import (
	"bytes"
	"os"
	"testing"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/ts"
)

const sample = "../../ts/testdata/av.ts"

func TestCheckFileOnFFmpegOutput(t *testing.T) {
	testutil.NeedTool(t, "ffmpeg")
	testutil.NeedTool(t, "ffprobe")
	r := CheckFile(t, sample, Want{Video: 1, Audio: 1})
	if err := r.PCRMonotonic(); err != nil || len(r.PCR) == 0 {
		t.Fatalf("PCR: %v (%d seen)", err, len(r.PCR))
	}
}

// TestWalkFindsFaults breaks a clean recording in the ways the checks exist
// for, and expects both walks to notice.
func TestWalkFindsFaults(t *testing.T) {
	clean, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	// The index of the n-th packet on pid.
	nth := func(pid uint16, n int) int {
		for i := 0; i < len(clean); i += ts.PacketSize {
			if ts.PID(clean[i:]) == pid {
				if n == 0 {
					return i
				}
				n--
			}
		}
		t.Fatalf("no packet %d on %#x", n, pid)
		return 0
	}
	for _, tc := range []struct {
		name   string
		break_ func(b []byte) []byte
		check  func(r *Report, a *AstitsReport) bool
	}{
		{"continuity", func(b []byte) []byte {
			i := nth(0x100, 5)
			ts.SetCC(b[i:], ts.CC(b[i:])+3)
			return b
		}, func(r *Report, a *AstitsReport) bool { return len(r.CCErrors) > 0 && len(a.CCErrors) > 0 }},
		{"lost packet", func(b []byte) []byte {
			i := nth(0x101, 2)
			return append(b[:i], b[i+ts.PacketSize:]...)
		}, func(r *Report, a *AstitsReport) bool { return len(r.CCErrors) > 0 && len(a.CCErrors) > 0 }},
		{"bad CRC", func(b []byte) []byte {
			i := nth(0x1000, 0)
			b[i+10] ^= 0xff
			return b
		}, func(r *Report, a *AstitsReport) bool { return r.BadPSI > 0 }},
		{"reserved adaptation control", func(b []byte) []byte {
			b[nth(0x100, 3)+3] &= 0xcf
			return b
		}, func(r *Report, a *AstitsReport) bool { return r.Malformed > 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.break_(bytes.Clone(clean))
			r := Walk(b)
			a, err := WalkAstits(b)
			if err != nil {
				a = &AstitsReport{}
			}
			if !tc.check(r, a) {
				t.Fatalf("fault not found: ours %d CC errors, %d malformed, %d bad PSI; astits %d CC errors (%v)", len(r.CCErrors), r.Malformed, r.BadPSI, len(a.CCErrors), err)
			}
		})
	}
}

func TestSynth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		video bool
		noPMT bool
	}{
		{"video", true, false},
		{"audio", false, false},
		{"audio without PMT", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSynth(tc.video, 1<<33-5000) // wraps within the run
			s.NoPMT = tc.noPMT
			b := s.Append(nil, 50)
			r := Walk(b)
			if r.Malformed > 0 || len(r.CCErrors) > 0 || r.BadPSI > 0 {
				t.Fatalf("synth output: %d malformed, %v CC errors, %d bad PSI", r.Malformed, r.CCErrors, r.BadPSI)
			}
			if tc.noPMT {
				if r.PMTs != 0 || r.Unlisted == 0 {
					t.Fatalf("%d PMTs, %d unlisted packets", r.PMTs, r.Unlisted)
				}
				return
			}
			e := r.ES[0x100]
			if e == nil || e.PES != 50 || len(e.PTS) != 50 || e.CutPES != 0 {
				t.Fatalf("ES %+v", e)
			}
			if tc.video != ts.IsVideoType(e.Type) {
				t.Fatalf("stream type %#x", e.Type)
			}
			if d := (e.PTS[1].Value - e.PTS[0].Value) & ts.TimestampMask; d != s.Frame() {
				t.Fatalf("PTS step %d, want %d", d, s.Frame())
			}
			a, err := WalkAstits(b)
			if err != nil || len(a.CCErrors) > 0 || len(a.ES) != 1 {
				t.Fatalf("astits: %v, %+v", err, a)
			}
		})
	}
}
