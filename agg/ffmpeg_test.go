package agg

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// ffFeed is one ffmpeg process (the README's camera or microphone feed)
// publishing to a feed topic the way ingest does: its stdout read in
// arbitrary chunks, cut by a ts.Aligner, each read's whole packets one
// message, one From per process.
type ffFeed struct {
	proc *testutil.Proc
	done chan struct{}
	msgs int
	// skipped is what the aligner dropped, once the feed has ended.
	skipped uint64
	// arrived is when its media reached the topic, once the feed has ended.
	arrived arrivals
}

// arrivals tracks when a feed's media arrived against its timestamps: on a
// busy machine a real-time ffmpeg and its reader run late, and late by
// different amounts, and no muxer can put back what the scheduler took.
type arrivals struct {
	first, last time.Time // the first and last message
	lag         tscheck.Lag
}

// note records a message of packets that arrived at now.
func (a *arrivals) note(now time.Time, pkts []byte) {
	if a.first.IsZero() {
		a.first = now
	}
	a.last = now
	tscheck.EachPTS(pkts, func(_ int, _ uint16, pts uint64) { a.lag.Note(now, pts) })
}

// feedOpts alter what reaches the topic, to imitate broken feeds.
type feedOpts struct {
	// dur stops ffmpeg after that much media (0: run until stopped).
	dur time.Duration
	// garbage inserts junk into the byte stream: between packets at a read
	// boundary when aligned, anywhere otherwise.
	garbage, anywhere bool
	// noPSI strips PAT, PMT and SDT: a feed that never sends a PMT.
	noPSI bool
}

func startFeed(t *testing.T, h *hub.Hub, name string, video bool, o feedOpts) *ffFeed {
	t.Helper()
	ff := testutil.Feed{Video: video, Audio: !video, Out: "pipe:1"}
	if o.dur > 0 {
		ff.Extra = []string{"-t", o.dur.String()}
	}
	proc, stdout := testutil.StartFeedReading(t, ff)
	f := &ffFeed{proc: proc, done: make(chan struct{})}
	topic := h.Join(FeedTopic(name))
	from := h.NewID()
	rng := rand.New(rand.NewSource(int64(from)))
	go func() {
		defer close(f.done)
		defer topic.Leave()
		var al ts.Aligner
		defer func() { f.skipped = al.Skipped() }()
		buf := make([]byte, 40000)
		for {
			var n int
			var err error
			if o.garbage && !o.anywhere {
				// Whole packets per read, so that junk lands between two.
				n, err = io.ReadFull(stdout, buf[:ts.PacketSize*(1+rng.Intn(len(buf)/ts.PacketSize))])
			} else {
				n, err = stdout.Read(buf[:1+rng.Intn(len(buf)-1)])
			}
			chunk := buf[:n]
			if o.garbage && n > 0 && rng.Intn(4) == 0 {
				junk := []byte("\x47garbage\x00\x47\xff not a packet")
				at := 0
				if o.anywhere {
					at = rng.Intn(n)
				}
				chunk = append(append(append([]byte{}, buf[:at]...), junk...), buf[at:n]...)
			}
			pkts := al.Append(make([]byte, 0, len(chunk)+ts.PacketSize), chunk)
			if o.noPSI {
				pkts = stripPSI(pkts)
			}
			if len(pkts) > 0 {
				f.arrived.note(time.Now(), pkts)
				topic.Publish(&hub.Message{Data: pkts, From: from})
				f.msgs++
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(f.stop)
	return f
}

func stripPSI(b []byte) []byte {
	out := b[:0]
	for i := 0; i < len(b); i += ts.PacketSize {
		if pid := ts.PID(b[i:]); pid < 0x20 || pid == 0x1000 {
			continue
		}
		out = append(out, b[i:i+ts.PacketSize]...)
	}
	return out
}

// stop ends ffmpeg and waits for its reader.
func (f *ffFeed) stop() {
	f.proc.Kill()
	<-f.done
}

// wait waits for ffmpeg to end by itself, and its reader to have published
// everything.
func (f *ffFeed) wait(t *testing.T) {
	t.Helper()
	if err := f.proc.Wait(t, 20*time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, f.proc.Output())
	}
	<-f.done
}

// recorder subscribes to a stream topic and keeps every message, as a
// destination's file option would.
type recorder struct {
	sub  *hub.Sub
	done chan struct{}

	mu   sync.Mutex
	msgs [][]byte
}

func record(t *testing.T, h *hub.Hub, stream string) *recorder {
	r := &recorder{sub: h.Subscribe(StreamTopic(stream), hub.SubConfig{Queue: 1 << 14}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			select {
			case <-r.sub.Done():
				return
			case m := <-r.sub.C():
				r.mu.Lock()
				r.msgs = append(r.msgs, m.Data)
				r.mu.Unlock()
			}
		}
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *recorder) stop() {
	r.sub.Close()
	<-r.done
}

// maxRealSkew bounds the A/V skew of real ffmpeg feeds on a loaded machine.
const maxRealSkew = 500 * time.Millisecond

// span returns how much video (or audio) time the recording holds, from
// its first PTS to its last.
func (r *recorder) span(video bool) time.Duration {
	r.mu.Lock()
	rep := tscheck.Walk(bytes.Join(r.msgs, nil))
	r.mu.Unlock()
	v := rep.Kind(video)
	if len(v) == 0 || len(v[0].PTS) < 2 {
		return 0
	}
	pts := v[0].PTS
	return time.Duration(pts[len(pts)-1].Value-pts[0].Value) * time.Second / 90000
}

// published returns how many messages the stream's topic has taken in.
func (r *recorder) published() int { return int(r.sub.Topic().Stats().MsgsIn) }

// media returns how many packets of the given output PIDs it has.
func (r *recorder) count(pids ...uint16) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		for i := 0; i < len(m); i += ts.PacketSize {
			for _, p := range pids {
				if ts.PID(m[i:]) == p {
					n++
				}
			}
		}
	}
	return n
}

// save stops recording and writes the recording to a file.
func (r *recorder) save(t *testing.T) (string, [][]byte) {
	t.Helper()
	r.stop()
	if d := r.sub.Dropped(); d > 0 {
		t.Fatalf("the recorder lost %d messages", d)
	}
	path := filepath.Join(t.TempDir(), "rec.ts")
	if err := os.WriteFile(path, bytes.Join(r.msgs, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, r.msgs
}

// finished waits for the feeds to end by themselves, closes a and saves the
// recording, which must decode as one video and one audio stream.
func (r *recorder) finished(t *testing.T, a *Agg, feeds ...*ffFeed) (*tscheck.Report, string) {
	t.Helper()
	for _, f := range feeds {
		f.wait(t)
	}
	a.Close()
	path, _ := r.save(t)
	return tscheck.CheckFile(t, path, tscheck.Want{Video: 1, Audio: 1}), path
}

// videoAudioStream returns a hub, an Agg closed when the test ends, and a
// recorder of stream "s", whose rule is video0 then audio0.
func videoAudioStream(t *testing.T) (*hub.Hub, *Agg, *recorder) {
	t.Helper()
	h := hub.New()
	a := newAgg(t, Config{}, h)
	t.Cleanup(a.Close)
	rec := record(t, h, "s")
	if err := a.Set(testutil.Context(t, 5*time.Second), "s", []string{"video0", "audio0"}); err != nil {
		t.Fatal(err)
	}
	return h, a, rec
}

func needFFmpeg(t *testing.T) {
	testutil.NeedTool(t, "ffmpeg")
	testutil.NeedTool(t, "ffprobe")
}

// TestFFmpegFeeds muxes real video and audio feeds, some broken on the way
// in the ways feeds break, and checks the recording as a user would.
func TestFFmpegFeeds(t *testing.T) {
	needFFmpeg(t)
	for _, tc := range []struct {
		name         string
		video, audio feedOpts
		// decodes says the recording must decode without an error line.
		// Junk loses packets, which no muxer can repair: inside packets,
		// and between them too when the junk arrives in the same read as
		// the packet before it, which ts.Aligner then drops (it cannot tell
		// a whole packet followed by junk from a truncated one).
		decodes bool
	}{
		{name: "clean", decodes: true},
		{name: "audio feed never sends a PMT", audio: feedOpts{noPSI: true}, decodes: true},
		{name: "video feed never sends a PMT", video: feedOpts{noPSI: true}, decodes: true},
		{name: "garbage between packets", video: feedOpts{garbage: true}, audio: feedOpts{garbage: true}},
		{name: "garbage inside packets", video: feedOpts{garbage: true, anywhere: true}, audio: feedOpts{garbage: true, anywhere: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, a, rec := videoAudioStream(t)
			tc.video.dur, tc.audio.dur = 2500*time.Millisecond, 2500*time.Millisecond
			v := startFeed(t, h, "video0", true, tc.video)
			au := startFeed(t, h, "audio0", false, tc.audio)
			v.wait(t)
			au.wait(t)
			a.Close()
			if tc.video.garbage && (v.skipped == 0 || au.skipped == 0) {
				t.Fatalf("no garbage went in: the aligners skipped %d and %d bytes", v.skipped, au.skipped)
			}
			path, _ := rec.save(t)
			if tc.decodes {
				tscheck.CheckFile(t, path, tscheck.Want{Video: 1, Audio: 1})
				return
			}
			b, _ := os.ReadFile(path)
			rep := tscheck.Walk(b)
			if rep.Malformed > 0 || len(rep.CCErrors) > 0 || rep.BadPSI > 0 || len(rep.Kind(true)) != 1 || len(rep.Kind(false)) != 1 {
				t.Fatalf("%d malformed, %d CC errors, %d bad PSI, %d video and %d audio PIDs", rep.Malformed, len(rep.CCErrors), rep.BadPSI, len(rep.Kind(true)), len(rep.Kind(false)))
			}
			p, err := tscheck.Probe(path)
			if err != nil || len(p.Programs) != 1 || len(p.Streams) != 2 {
				t.Fatalf("ffprobe: %v %+v", err, p)
			}
		})
	}
}

// TestFFmpegLateAudio starts the audio feed seconds after the video: its
// clock starts seconds later too, and the muxer must put both on one.
func TestFFmpegLateAudio(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	h, a, rec := videoAudioStream(t)
	v := startFeed(t, h, "video0", true, feedOpts{dur: 4500 * time.Millisecond})
	// ffmpeg sends in real time (-re): once 2.5 s of video is out, the
	// audio's ffmpeg starts its clock that much later.
	testutil.Eventually(t, 15*time.Second, func() bool { return rec.span(true) >= 2500*time.Millisecond }, "2.5 s of video out")
	au := startFeed(t, h, "audio0", false, feedOpts{dur: 1500 * time.Millisecond})
	rep, path := rec.finished(t, a, au, v)
	if err := rep.PCRMonotonic(); err != nil || len(rep.PCR) == 0 {
		t.Fatalf("PCR: %v (%d seen)", err, len(rep.PCR))
	}
	first, worst, n, err := tscheck.AVSkew(path)
	if err != nil {
		t.Fatal(err)
	}
	// The muxer's promise is 100 ms between media that arrive together;
	// TestMuxTwoFeeds holds it to that on a simulated clock. Two real-time
	// processes on a busy machine arrive with the scheduler's jitter on
	// top, which no muxer can take out: the bound adds what this run's
	// arrivals wandered, and still tells one clock from two 2.5 s apart.
	jitter := v.arrived.lag.Jitter() + au.arrived.lag.Jitter()
	t.Logf("audio started 2.5 s after video: first audio PTS %+v off the video's, worst of %d %+v; arrivals wandered %v", first, n, worst, jitter)
	if bound := maxRealSkew + jitter; n == 0 || first.Abs() >= bound || worst.Abs() >= bound {
		t.Fatalf("audio and video arriving together are %v apart (first audio), %v at worst; want under %v", first, worst, bound)
	}
}

// TestFFmpegLateVideo starts the video feed after the audio: the PCR moves
// from the audio's PID to the video's, whose encoder keeps its own distance
// between PCR and PTS, so the program's clock jumps there, and the first
// PCR on the new PID must say so (discontinuity_indicator), as a PCR that
// goes back or leaps unannounced breaks a strict decoder's clock.
func TestFFmpegLateVideo(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	h, a, rec := videoAudioStream(t)
	au := startFeed(t, h, "audio0", false, feedOpts{dur: 4 * time.Second})
	testutil.Eventually(t, 15*time.Second, func() bool { return rec.span(false) >= 1500*time.Millisecond }, "1.5 s of audio out")
	v := startFeed(t, h, "video0", true, feedOpts{dur: 1500 * time.Millisecond})
	rep, _ := rec.finished(t, a, au, v)
	if len(rep.PCRPIDs) != 2 {
		t.Fatalf("PCR PIDs %v: want the audio's, then the video's", rep.PCRPIDs)
	}
	if err := rep.PCRMonotonic(); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rep.PCR, func(s tscheck.Stamp) bool { return s.Disc }) {
		t.Error("no PCR says the clock changed where the PCR PID did")
	}
}

// TestFFmpegMuteUnmute removes and restores the audio feed while recording:
// the removal switches at a PES boundary and is in force when Set returns,
// the video never skips a frame, and the PMT follows.
func TestFFmpegMuteUnmute(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	h, a, rec := videoAudioStream(t)
	ctx := testutil.Context(t, 20*time.Second)
	v := startFeed(t, h, "video0", true, feedOpts{})
	au := startFeed(t, h, "audio0", false, feedOpts{})
	// Output PIDs go to streams in the order their PMTs arrive.
	var videoPID, audioPID uint16
	testutil.Eventually(t, 10*time.Second, func() bool {
		rec.mu.Lock()
		r := tscheck.Walk(bytes.Join(rec.msgs, nil))
		rec.mu.Unlock()
		v, a := r.Kind(true), r.Kind(false)
		if len(v) != 1 || len(a) != 1 || a[0].Packets < 50 {
			return false
		}
		videoPID, audioPID = v[0].PID, a[0].PID
		return true
	}, "no audio out")

	if err := a.Set(ctx, "s", []string{"video0"}); err != nil {
		t.Fatal(err)
	}
	muted := rec.published()
	mutedAudio := rec.count(audioPID)
	testutil.Eventually(t, 10*time.Second, func() bool { return rec.count(videoPID) > 0 && rec.published() > muted+30 }, "video stopped after the mute")
	if got := rec.count(audioPID); got != mutedAudio {
		t.Fatalf("%d audio packets left after the mute returned", got-mutedAudio)
	}
	unmuting := rec.published()
	if err := a.Set(ctx, "s", []string{"video0", "audio0"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return rec.count(audioPID) > mutedAudio+50 }, "audio did not come back")
	a.Close()
	v.stop()
	au.stop()
	path, msgs := rec.save(t)

	// Nothing of the audio PID between the mute's answer and the unmute.
	for i := muted; i < unmuting; i++ {
		for k := 0; k < len(msgs[i]); k += ts.PacketSize {
			if ts.PID(msgs[i][k:]) == audioPID {
				t.Fatalf("message %d (the mute returned at %d) carries audio", i, muted)
			}
		}
	}
	rep := tscheck.CheckFile(t, path, tscheck.Want{Video: 1, Audio: 1})
	if len(rep.PMTVersions) < 3 {
		t.Fatalf("PMT versions %v: want a change at the mute and at the unmute", rep.PMTVersions)
	}
	au2 := rep.ES[audioPID]
	if au2 == nil || au2.CutPES > 0 {
		t.Fatalf("audio PES cut by the mute: %+v", au2)
	}
	// Every frame is there: 40 ms apart, less while the muxer slews a
	// feed's clock, never a frame missing (80 ms, less the slew's 20).
	vid := rep.ES[videoPID]
	for i := 1; i < len(vid.PTS); i++ {
		if d := int64(vid.PTS[i].Value) - int64(vid.PTS[i-1].Value); d <= 0 || d >= 5400 {
			t.Fatalf("video PTS step %d (%.0f ms) at packet %d: a gap", d, float64(d)/90, vid.PTS[i].Packet)
		}
	}
}

// TestFFmpegRestart restarts the audio feed's ffmpeg mid-stream: a new
// connection, a new clock, continuity counters from 0.
func TestFFmpegRestart(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	h, a, rec := videoAudioStream(t)
	v := startFeed(t, h, "video0", true, feedOpts{dur: 3500 * time.Millisecond})
	a1 := startFeed(t, h, "audio0", false, feedOpts{dur: 1500 * time.Millisecond})
	a1.wait(t)
	a2 := startFeed(t, h, "audio0", false, feedOpts{dur: 1500 * time.Millisecond})
	rep, _ := rec.finished(t, a, a2, v)
	au := rep.Kind(false)[0]
	// Across the restart the timestamps move on by about the time the
	// audio was away (a new ffmpeg takes a while to start, longer on a busy
	// machine); never backwards, as the new ffmpeg's own clock would.
	away := a2.arrived.first.Sub(a1.arrived.last)
	for i := 1; i < len(au.PTS); i++ {
		if d := int64(au.PTS[i].Value) - int64(au.PTS[i-1].Value); d <= 0 || time.Duration(d)*time.Second/90000 > away+time.Second {
			t.Fatalf("audio PTS step %d ms at packet %d; the audio was away %v", d/90, au.PTS[i].Packet, away)
		}
	}
}
