package rwc

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/vwlab/vw/internal/netcap"
	"github.com/vwlab/vw/internal/testrelay"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/reconws"
	"github.com/vwlab/vw/ts"
)

// simLink is a link of a set rate in simulated time: what is sent queues
// and drains at the rate, and its backlog is what a client on it would
// report. The shedder's rules are checked on it exactly and quickly; the
// end-to-end test runs the same through a real capped TCP path.
type simLink struct {
	rate    float64 // bytes per second; 0: no cap
	at      time.Time
	queue   float64
	written uint64
}

func (l *simLink) Backlog() reconws.Backlog {
	return reconws.Backlog{Unacked: int64(l.queue), Written: l.written}
}

func (l *simLink) advance(now time.Time) {
	if l.rate == 0 {
		l.queue = 0
	} else {
		l.queue = max(0, l.queue-l.rate*now.Sub(l.at).Seconds())
	}
	l.at = now
}

// send queues n bytes and returns how long until the last of them is
// delivered, at the current rate.
func (l *simLink) send(n int) time.Duration {
	l.queue += float64(n)
	l.written += uint64(n)
	if l.rate == 0 {
		return 0
	}
	return time.Duration(l.queue / l.rate * float64(time.Second))
}

// ffmpegTS makes seconds of a camera-and-microphone feed as vw's examples
// encode it, with a GOP of 12 pictures (ffmpeg's default, 0.48 s), about
// 780 kbit/s in all: testsrc2 moves a lot, so its pictures are as large
// as a real scene's.
func ffmpegTS(t *testing.T, seconds int, video ...string) []byte {
	t.Helper()
	bin := testutil.NeedTool(t, "ffmpeg")
	if len(video) == 0 {
		video = []string{"-c:v", "mpeg1video", "-b:v", "600k", "-bf", "0"}
		video = append(video, "-c:a", "mp2", "-b:a", "64k")
	}
	path := filepath.Join(t.TempDir(), "in.ts")
	args := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=480x270:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", time.Duration(seconds * int(time.Second)).String()}
	args = append(append(args, video...), "-ar", "44100", "-f", "mpegts", "-muxdelay", "0.001", path)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// simRun is what came out of a stream filtered onto a simLink.
type simRun struct {
	out       []byte
	worst     time.Duration   // longest a message took to be delivered
	worstAt   time.Duration   // when it was sent, from the start
	videoAt   []time.Duration // when each video PES that left was produced
	audioPES  int             // audio PES that left
	inAudio   int             // audio PES in the input
	inVideoAt []time.Duration // when each video PES of the input was produced
}

// simulate feeds in to a shedder in 11-packet messages, each at the time
// its PCR says it was produced, over a link whose rate is capped at
// cap(elapsed).
func simulate(t *testing.T, s *shedder, in []byte, cap func(time.Duration) float64) *simRun {
	t.Helper()
	t0 := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	link := &simLink{at: t0}
	run := &simRun{}
	var first uint64
	elapsed := time.Duration(0)
	const msg = 11 * ts.PacketSize
	for off := 0; off < len(in); off += msg {
		m := in[off:min(off+msg, len(in))]
		for i := 0; i < len(m); i += ts.PacketSize {
			if base, ext, ok := ts.PCR(m[i:]); ok {
				pcr := ts.PCR27(base, ext)
				if first == 0 {
					first = pcr
				}
				elapsed = time.Duration((pcr - first) * 1000 / 27)
			}
		}
		countPES(m, func(video bool) {
			if video {
				run.inVideoAt = append(run.inVideoAt, elapsed)
			} else {
				run.inAudio++
			}
		})
		now := t0.Add(elapsed)
		link.advance(now)
		link.rate = cap(elapsed)
		out := s.filter(m, link, now)
		if len(out) == 0 {
			continue
		}
		if d := link.send(len(out)); d > run.worst {
			run.worst, run.worstAt = d, elapsed
		}
		countPES(out, func(video bool) {
			if video {
				run.videoAt = append(run.videoAt, elapsed)
			} else {
				run.audioPES++
			}
		})
		run.out = append(run.out, out...)
	}
	return run
}

// countPES calls f for each PES start of the feed's video (PID 0x100) and
// audio (0x101) in b.
func countPES(b []byte, f func(video bool)) {
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		p := b[i:]
		if pid := ts.PID(p); ts.PayloadUnitStart(p) && (pid == 0x100 || pid == 0x101) {
			f(pid == 0x100)
		}
	}
}

func streamRate(b []byte, seconds int) float64 { return float64(len(b)) / float64(seconds) }

func newTestShedder(maxDelay time.Duration) (*shedder, *logtest.Hook) {
	log, hook := logtest.NewNullLogger()
	s := newShedder(&dest{})
	s.log, s.maxDelay = logrus.NewEntry(log), maxDelay
	return s, hook
}

// On a link capped at half the stream's rate for 10 s, then lifted, the
// stream leaves never more than 1 s behind, keeps all its audio and a
// picture or more every second, and is whole again within 2 s of the
// lift; what leaves is a valid stream (ffprobe, ffmpeg -xerror, our walk
// and go-astits: no continuity error, no cut PES, PCR monotonic).
func TestShedAtHalfRate(t *testing.T) {
	in := ffmpegTS(t, 20)
	rate := streamRate(in, 20)
	capped := func(e time.Duration) float64 {
		if e >= 5*time.Second && e < 15*time.Second {
			return rate / 2
		}
		return 0
	}
	s, hook := newTestShedder(time.Second)
	run := simulate(t, s, in, capped)
	t.Logf("stream %.0f kbit/s; worst delivery %v at %v; %d of %d pictures and %d of %d audio frames left; skipped %d GOPs, %d bytes",
		rate*8/1000, run.worst, run.worstAt, len(run.videoAt), len(run.inVideoAt), run.audioPES, run.inAudio,
		s.d.skippedGOPs.Load(), s.d.skippedBytes.Load())

	if run.worst > time.Second {
		t.Errorf("a message took %v to deliver (sent %v in), more than the 1 s bound", run.worst, run.worstAt)
	}
	if run.audioPES != run.inAudio {
		t.Errorf("%d of %d audio frames left", run.audioPES, run.inAudio)
	}
	for sec := 5 * time.Second; sec < 15*time.Second; sec += time.Second {
		n := 0
		for _, at := range run.videoAt {
			if at >= sec && at < sec+time.Second {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no picture left in the second from %v", sec)
		}
	}
	gone := 0
	for _, at := range run.inVideoAt {
		if at >= 17*time.Second && !slices.Contains(run.videoAt, at) {
			gone++
		}
	}
	if gone > 0 {
		t.Errorf("%d pictures produced 2 s or more after the cap lifted did not leave", gone)
	}
	if g, b := s.d.skippedGOPs.Load(), s.d.skippedBytes.Load(); g == 0 || b == 0 || b%ts.PacketSize != 0 {
		t.Errorf("skipped %d GOPs, %d bytes", g, b)
	}
	var said []string
	for _, e := range hook.AllEntries() {
		said = append(said, e.Message)
	}
	if len(said) != 2 || !strings.HasPrefix(said[0], "shedding video") || !strings.HasPrefix(said[1], "stopped shedding") {
		t.Errorf("logged %q, want one start and one stop", said)
	}
	checkStream(t, run.out, true)
}

// checkStream checks a filtered stream as a user would a recording of it:
// ffprobe lists the codecs, ffmpeg -xerror decodes it, both packet walks
// find no continuity error, no PES cut, PCRs monotonic and close enough.
func checkStream(t *testing.T, b []byte, mpeg1 bool) {
	t.Helper()
	r := tscheck.Walk(b)
	for _, e := range r.ES {
		if e.CutPES > 0 {
			t.Errorf("PID %#x: %d PES cut", e.PID, e.CutPES)
		}
	}
	if err := r.PCRMonotonic(); err != nil {
		t.Error(err)
	}
	for i := 1; i < len(r.PCR); i++ {
		if gap := r.PCR[i].Value - r.PCR[i-1].Value; gap > 100*27000 {
			t.Errorf("PCRs %v apart at packet %d: more than the 100 ms allowed", time.Duration(gap*1000/27), r.PCR[i].Packet)
			break
		}
	}
	path := filepath.Join(t.TempDir(), "out.ts")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	want := tscheck.Want{Video: 1, Audio: 1}
	if !mpeg1 {
		want.VideoCodec, want.AudioCodec = "h264", "aac"
	}
	tscheck.CheckFile(t, path, want)
}

// The bound holds at any cap: at three quarters of the stream's rate
// little is dropped, at a quarter even audio must give way (whole frames);
// H.264 keyframes are found as MPEG-1's are.
func TestShedAtRates(t *testing.T) {
	mpeg1 := ffmpegTS(t, 12)
	for _, tc := range []struct {
		name     string
		in       []byte
		share    float64
		minAudio float64
	}{
		{"mpeg1 75%", mpeg1, 0.75, 1},
		{"mpeg1 25%", mpeg1, 0.25, 0.5},
		{"h264 50%", ffmpegTS(t, 12, "-c:v", "libx264", "-preset", "ultrafast", "-g", "12", "-bf", "0", "-b:v", "700k", "-c:a", "aac", "-b:a", "64k"), 0.5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rate := streamRate(tc.in, 12)
			s, _ := newTestShedder(time.Second)
			run := simulate(t, s, tc.in, func(e time.Duration) float64 {
				if e >= 3*time.Second {
					return rate * tc.share
				}
				return 0
			})
			t.Logf("stream %.0f kbit/s; worst delivery %v at %v; %d of %d pictures and %d of %d audio frames left; skipped %d GOPs, %d bytes, %d audio frames",
				rate*8/1000, run.worst, run.worstAt, len(run.videoAt), len(run.inVideoAt), run.audioPES, run.inAudio,
				s.d.skippedGOPs.Load(), s.d.skippedBytes.Load(), s.d.skippedAudio.Load())
			if run.worst > time.Second {
				t.Errorf("a message took %v to deliver (sent %v in), more than the 1 s bound", run.worst, run.worstAt)
			}
			if share := float64(run.audioPES) / float64(run.inAudio); share < tc.minAudio {
				t.Errorf("%.0f%% of audio frames left, want %.0f%%", share*100, tc.minAudio*100)
			}
			if s.d.skippedGOPs.Load() == 0 {
				t.Error("nothing was shed")
			}
			checkStream(t, run.out, strings.HasPrefix(tc.name, "mpeg1"))
		})
	}
}

// A link that keeps up changes nothing: every message leaves as it came,
// the very same bytes, not a copy. So does a destination that never sheds
// (max_delay off), however slow its link.
func TestShedPassesThrough(t *testing.T) {
	in := ffmpegTS(t, 4)
	for _, tc := range []struct {
		name     string
		maxDelay time.Duration
		rate     float64
	}{
		{"fast link", time.Second, 0},
		{"off", 0, streamRate(in, 4) / 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, hook := newTestShedder(tc.maxDelay)
			link := &simLink{rate: tc.rate}
			const msg = 11 * ts.PacketSize
			now := time.Now()
			for off := 0; off < len(in); off += msg {
				m := in[off:min(off+msg, len(in))]
				now = now.Add(30 * time.Millisecond)
				link.advance(now)
				out := s.filter(m, link, now)
				if len(out) != len(m) || &out[0] != &m[0] {
					t.Fatalf("message at %d changed: %d bytes out of %d", off, len(out), len(m))
				}
				link.send(len(out))
			}
			if len(hook.AllEntries()) > 0 || s.d.skippedBytes.Load() > 0 {
				t.Errorf("shed %d bytes, logged %d lines", s.d.skippedBytes.Load(), len(hook.AllEntries()))
			}
		})
	}
}

func TestMaxDelayRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want time.Duration
	}{
		{"", true, 2 * time.Second},
		{"500ms", true, 500 * time.Millisecond},
		{"1.5s", true, 1500 * time.Millisecond},
		{"off", true, 0},
		{"0", false, 0},
		{"-1s", false, 0},
		{"1", false, 0},
		{"soon", false, 0},
	} {
		rule := Rule{Stream: "cam", Destination: "ws://relay/in/cam", ID: "0", MaxDelay: tc.in}
		err := Validate(rule)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("max_delay %q: %v, want ok=%v", tc.in, err, tc.ok)
		}
		if tc.ok {
			if got := maxDelay(rule, 2*time.Second); got != tc.want {
				t.Errorf("max_delay %q with default 2s: %v, want %v", tc.in, got, tc.want)
			}
		}
	}
	if got := maxDelay(Rule{}, -1); got != 0 {
		t.Errorf("a negative default sheds at %v", got)
	}
}

// Through a destination of an RWC, a real client and a link capped at a
// quarter of the stream's rate, the shedding shows in Stats while the
// client keeps its one connection.
func TestShedStats(t *testing.T) {
	in := ffmpegTS(t, 4)
	rl := testrelay.New(t, testrelay.Options{})
	link, err := netcap.Listen(rl.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	link.SetRate(streamRate(in, 4)/4, 0)
	f := newFixture(t, Config{})
	url := "ws://" + link.Addr() + "/in/test"
	f.set(Rule{Stream: "cam", Destination: url, ID: "0"})
	f.waitConnected("0", url)
	start := time.Now()
	const msg = 11 * ts.PacketSize
	for off := 0; off < len(in); off += msg {
		// At the stream's own pace, as a muxer publishes it.
		<-time.After(time.Until(start.Add(time.Duration(float64(off) / streamRate(in, 4) * float64(time.Second)))))
		f.pub("cam", testrelay.Msg{Data: in[off:min(off+msg, len(in))]})
	}
	st, _ := f.r.Stats("0")
	if !st.Shed.Shedding || st.Shed.SkippedGOPs == 0 || st.Shed.SkippedBytes == 0 || st.Shed.Behind <= 0 {
		t.Errorf("stats after 4 s at a quarter of the rate: %+v", st.Shed)
	}
	if st.Connects != 1 || link.Accepted() != 1 {
		t.Errorf("%d connects, %d through the link, want 1", st.Connects, link.Accepted())
	}
}
