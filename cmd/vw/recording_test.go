package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
)

// TestRecordingThroughVWStream records, with a destination's file option, a
// stream of two real ffmpeg feeds through the whole vw stream: the camera
// first, the microphone seconds later, then a mute and an unmute. The
// recording must be what a user's tools accept: one program with one
// mpeg1video and one mp2, decoded with no error and no continuity error;
// audio and video on one clock; PCR monotonic; the PMT changing at the mute
// and the unmute, and no audio while the PMT says muted; no video frame lost.
func TestRecordingThroughVWStream(t *testing.T) {
	r := startRecorded(t)
	stream, v := r.stream, r.v

	ffmpeg(t, "video", "http://"+stream.addr+"/ts/video0")
	// 2.5 s of video (ffmpeg sends in real time) before the microphone
	// starts, so the two ffmpeg clocks start that far apart.
	testutil.Eventually(t, 15*time.Second, func() bool { return v.videoSpan() >= 2500*time.Millisecond }, "2.5 s of video alone")
	ffmpeg(t, "audio", "http://"+stream.addr+"/ts/audio0")
	v.grows(t, 100_000, 10*time.Second, "video and audio")

	r.muteUnmute(t, 80_000, 10*time.Second)
	path := r.stop(t)
	rep := tscheck.CheckFile(t, path, tscheck.Want{Video: 1, Audio: 1})
	if len(rep.PMTVersions) < 3 {
		t.Fatalf("PMT versions %v: want changes at the mute and at the unmute", rep.PMTVersions)
	}
	if rep.OffPMT != 0 {
		t.Fatalf("%d packets of a feed the PMT in force did not list: media leaked past the mute", rep.OffPMT)
	}
	if err := rep.PCRMonotonic(); err != nil || len(rep.PCR) == 0 {
		t.Fatalf("PCR: %v (%d seen)", err, len(rep.PCR))
	}
	for _, a := range rep.Kind(false) {
		if a.CutPES != 0 {
			t.Fatalf("%d audio PES cut mid-frame", a.CutPES)
		}
	}
	vid := rep.Kind(true)[0]
	for i := 1; i < len(vid.PTS); i++ {
		if d := int64(vid.PTS[i].Value) - int64(vid.PTS[i-1].Value); d <= 0 || d >= 80*90 {
			t.Fatalf("video PTS step of %.0f ms at packet %d: a frame lost or out of order", float64(d)/90, vid.PTS[i].Packet)
		}
	}
	r.checkAVSkew(t, path, rep)
}

// recordedStream is what the recording tests share: a vw stream sending the
// stream "front" of video0 and audio0 to a relay, watched there, and
// recording it to front.ts.
type recordedStream struct {
	stream *proc
	v      *viewer
	dir    string
}

func startRecorded(t *testing.T) *recordedStream {
	t.Helper()
	testutil.NeedTool(t, "ffprobe")
	relay := relayProc(t)
	r := &recordedStream{dir: t.TempDir()}
	r.stream = streamProc(t, "VW_RECORDINGS="+r.dir)
	postRule(t, r.stream, "/api/streams", `{"stream":"front","feeds":["video0","audio0"]}`)
	postRule(t, r.stream, "/api/destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/front","id":"0","file":"front.ts"}`)
	r.v = watch(t, relay, "/out/lab1/front")
	return r
}

// muteUnmute takes audio0 out of the stream and puts it back, waiting each
// time for n more bytes at the viewer.
func (r *recordedStream) muteUnmute(t *testing.T, n int, within time.Duration) {
	t.Helper()
	postRule(t, r.stream, "/api/streams", `{"stream":"front","feeds":["video0"]}`)
	r.v.grows(t, n, within, "muted")
	postRule(t, r.stream, "/api/streams", `{"stream":"front","feeds":["video0","audio0"]}`)
	r.v.grows(t, n, within, "unmuted")
}

// stop deletes the destination, which answers once the recording is
// flushed, and returns the recording's path.
func (r *recordedStream) stop(t *testing.T) string {
	t.Helper()
	if status, body := httpDo(t, "DELETE", r.stream.baseURL+"/api/destinations/0", ""); status != 200 {
		t.Fatalf("delete: %d %s", status, body)
	}
	return filepath.Join(r.dir, "front.ts")
}

// checkAVSkew checks that audio and video that arrived together lie
// together in the recording at path (rep is its report). 100 ms is the
// muxer's promise on a simulated clock (agg's TestMuxTwoFeeds); real-time
// ffmpeg processes and two vw hops on a busy machine add the scheduler's
// jitter, which no muxer can take out: the bound adds what this run's
// arrivals wandered (measured at the viewer), and still tells one clock
// from two 2.5 s apart.
func (r *recordedStream) checkAVSkew(t *testing.T, path string, rep *tscheck.Report) {
	t.Helper()
	first, worst, n, err := tscheck.AVSkew(path)
	if err != nil {
		t.Fatal(err)
	}
	bound := 500*time.Millisecond + r.v.jitter()
	t.Logf("A/V: first audio %v off the video, worst of %d %v (bound %v); PMT versions %v", first, n, worst, bound, rep.PMTVersions)
	if n == 0 || first.Abs() >= bound || worst.Abs() >= bound {
		t.Fatalf("audio and video that arrived together are %v apart (first), %v (worst): want under %v", first, worst, bound)
	}
}
