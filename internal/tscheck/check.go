package tscheck

import (
	"os"
	"strings"
	"testing"

	"github.com/vwlab/vw/ts"
)

// Want says what a recording must hold.
type Want struct {
	Video int // video streams of VideoCodec
	Audio int // audio streams of AudioCodec
	// VideoCodec and AudioCodec are ffprobe's codec names; empty means
	// mpeg1video and mp2, what jsmpeg plays.
	VideoCodec, AudioCodec string
}

// CheckFile runs every check a user would on a recording and fails t on
// any problem: ffprobe lists exactly the wanted video and audio streams,
// all in one program; ffmpeg decodes it with -xerror and prints nothing;
// at -v debug it reports no continuity error or corrupt packet; our packet
// walk and go-astits's find no continuity error, no malformed packet and
// one PID per elementary stream, and agree on the PIDs. It returns our
// walk's report for further checks. The checks stay in one list, in the
// order a person would run them, so that a failure names the first tool
// that disagreed.
func CheckFile(t testing.TB, path string, want Want) *Report {
	t.Helper()
	if want.VideoCodec == "" {
		want.VideoCodec = "mpeg1video"
	}
	if want.AudioCodec == "" {
		want.AudioCodec = "mp2"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || len(b)%ts.PacketSize != 0 {
		t.Fatalf("%s: %d bytes, not a whole number of packets", path, len(b))
	}
	p, err := Probe(path)
	if err != nil {
		t.Fatal(err)
	}
	var video, audio int
	for _, s := range p.Streams {
		switch s.CodecName {
		case want.VideoCodec:
			video++
		case want.AudioCodec:
			audio++
		default:
			t.Errorf("ffprobe lists an unexpected %s stream (%s)", s.CodecName, s.ID)
		}
	}
	if video != want.Video || audio != want.Audio {
		t.Errorf("ffprobe lists %d %s and %d %s streams (%v), want %d and %d", video, want.VideoCodec, audio, want.AudioCodec, p.Codecs(), want.Video, want.Audio)
	}
	if len(p.Programs) != 1 || len(p.Programs[0].Streams) != len(p.Streams) {
		t.Errorf("ffprobe lists %d programs, want one holding all %d streams: %+v", len(p.Programs), len(p.Streams), p.Programs)
	}
	out, err := Decode(path)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("ffmpeg -xerror decode: %v, output: %q", err, out)
	}
	bad, err := DebugProblems(path)
	if err != nil {
		t.Error(err)
	}
	if len(bad) > 0 {
		t.Errorf("ffmpeg -v debug reports %d problems, first: %s", len(bad), bad[0])
	}
	r := Walk(b)
	if len(r.CCErrors) > 0 {
		t.Errorf("walk: %d continuity errors, first: %s", len(r.CCErrors), r.CCErrors[0])
	}
	if r.Malformed > 0 || r.BadPSI > 0 {
		t.Errorf("walk: %d malformed packets, %d bad PSI sections", r.Malformed, r.BadPSI)
	}
	if r.PATs == 0 || r.PMTs == 0 {
		t.Errorf("walk: %d PATs and %d PMTs", r.PATs, r.PMTs)
	}
	if v, a := r.Kind(true), r.Kind(false); len(v) != want.Video || len(a) != want.Audio {
		t.Errorf("walk: %d video and %d audio PIDs in the PMTs, want %d and %d (one per stream)", len(v), len(a), want.Video, want.Audio)
	}
	for _, e := range r.ES {
		if len(e.StreamIDs) > 1 {
			t.Errorf("walk: PID %#x carries stream_ids % x, want one", e.PID, e.StreamIDs)
		}
	}
	ar, err := WalkAstits(b)
	if err != nil {
		t.Errorf("go-astits: %v", err)
	} else {
		if len(ar.CCErrors) > 0 {
			t.Errorf("go-astits: %d continuity errors, first: %s", len(ar.CCErrors), ar.CCErrors[0])
		}
		if ar.Packets != r.Packets || len(ar.ES) != len(r.ES) {
			t.Errorf("go-astits sees %d packets and %d ES PIDs, our walk %d and %d", ar.Packets, len(ar.ES), r.Packets, len(r.ES))
		}
		for pid, typ := range ar.ES {
			if e := r.ES[pid]; e == nil || e.Type != uint8(typ) {
				t.Errorf("go-astits: PID %#x type %#x not what our walk saw", pid, typ)
			}
		}
	}
	return r
}
