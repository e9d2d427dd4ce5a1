package crossbar

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/internal/netcap"
	"github.com/vwlab/vw/internal/scrape"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/internal/tslive"
	"github.com/vwlab/vw/ts"
)

// labCamera starts ffmpeg as a lab's camera and microphone in one stream:
// testsrc2 moves a lot, so its pictures are as large as a real scene's and
// the stream (about 700 kbit/s) is mostly video; a GOP a second, as the
// README's examples. It publishes the stream on pub in messages of whole
// packets, as vw stream does, and returns what it sent, message by message,
// once ctx ends.
func labCamera(t *testing.T, ctx context.Context, pub *websocket.Conn) func() [][]byte {
	t.Helper()
	bin := testutil.NeedTool(t, "ffmpeg")
	cmd := exec.CommandContext(ctx, bin, "-v", "error", "-nostdin",
		"-re", "-f", "lavfi", "-i", "testsrc2=size=480x270:rate=25",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-c:v", "mpeg1video", "-b:v", "600k", "-bf", "0", "-g", "25",
		"-c:a", "mp2", "-b:a", "64k", "-ac", "1",
		"-f", "mpegts", "-muxdelay", "0.001", "pipe:1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		var carry []byte
		buf := make([]byte, 32<<10)
		for {
			n, err := out.Read(buf)
			b := append(carry, buf[:n]...)
			whole := len(b) / ts.PacketSize * ts.PacketSize
			for off := 0; off < whole; off += 16 * ts.PacketSize {
				msg := bytes.Clone(b[off:min(off+16*ts.PacketSize, whole)])
				if pub.WriteMessage(websocket.BinaryMessage, msg) != nil {
					return
				}
				sent = append(sent, msg)
			}
			carry = append([]byte(nil), b[whole:]...)
			if err != nil {
				return
			}
		}
	}()
	return func() [][]byte {
		<-done
		_ = cmd.Wait()
		return sent
	}
}

// viewer reads a route until it closes, giving each message to got with
// its arrival time (text messages only when text is set); it returns the
// error that ended it.
func viewer(c *websocket.Conn, text bool, got func([]byte, time.Time)) <-chan error {
	end := make(chan error, 1)
	go func() {
		for {
			mt, b, err := c.ReadMessage()
			if err != nil {
				end <- err
				return
			}
			if mt == websocket.BinaryMessage || text {
				got(b, time.Now())
			}
		}
	}()
	return end
}

// logLines keeps a logger's lines for a test to look at.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Levels() []logrus.Level { return logrus.AllLevels }
func (l *logLines) Fire(e *logrus.Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, e.Message)
	return nil
}
func (l *logLines) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.lines {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

// A viewer whose link carries half the stream's rate for 20 s, with a real
// ffmpeg camera and microphone published straight to the relay: its
// pictures arrive at most 1 s behind live (after a healthy viewer's) and
// keep coming, at least 95% of the audio frames of the cap arrive, it is
// never disconnected, what it got is valid TS (ffprobe, ffmpeg -xerror,
// both packet walks, no PES cut), and 2 s after the cap lifts it gets every
// picture, at most 200 ms behind. A healthy viewer of the same stream gets
// every message, in order, as sent. /stats counts the skipping, and the
// relay says when the viewer starts and stops.
func TestSlowViewerStaysLive(t *testing.T) {
	testutil.NeedTool(t, "ffprobe")
	sc := newSlowScene(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sent := labCamera(t, ctx, sc.pub)
	testutil.Eventually(t, 15*time.Second, func() bool { return len(sc.slowMeter.Video()) > 50 && len(sc.slowMeter.Audio()) > 50 },
		"no stream through the link: %d video and %d audio frames", len(sc.slowMeter.Video()), len(sc.slowMeter.Audio()))

	hold(3 * time.Second)
	rate := sc.healthyMeter.Rate(3 * time.Second)
	var st TopicReport
	capped, lifted := sc.link.Down.CapFor(ctx, rate/2, 20*time.Second, func() { st = sc.r.topic("/out/lab") })
	if !testutil.WaitFor(15*time.Second, func() bool { return sc.logs.has("viewer back to full rate") }) {
		t.Error("the relay never said the viewer was back to full rate")
	}
	hold(max(0, 4*time.Second-time.Since(lifted)))

	stop()
	sentMsgs := sent()
	send(t, sc.pub, websocket.TextMessage, []byte("end"))
	testutil.Eventually(t, 5*time.Second, func() bool {
		got := sc.healthyGot()
		return len(got) > 0 && string(got[len(got)-1]) == "end"
	}, "the healthy viewer never got the end")

	sc.checkSlow(t, st, rate, capped, lifted)
	sc.checkHealthy(t, sentMsgs)
	sc.checkCounted(t, st)
}

// slowScene is TestSlowViewerStaysLive's relay, the link that caps the slow
// viewer, and both viewers' meters.
type slowScene struct {
	r                       *relay
	link                    *netcap.Proxy
	logs                    *logLines
	pub, healthy            *websocket.Conn
	healthyMeter, slowMeter *tslive.Meter
	healthyEnd, slowEnd     <-chan error

	mu  sync.Mutex
	got [][]byte // what the healthy viewer read, text too
}

// newSlowScene starts a relay that keeps its log lines, a healthy viewer,
// a viewer through a netcap link (not capped yet) and a publisher, all
// closed when the test ends.
func newSlowScene(t *testing.T) *slowScene {
	sc := &slowScene{logs: &logLines{}}
	log := logrus.New()
	log.SetLevel(logrus.DebugLevel)
	log.SetOutput(io.Discard)
	log.AddHook(sc.logs)
	s := newServer(t, Config{}, logrus.NewEntry(log))
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(s.Close)
	sc.r = &relay{Server: s, http: hs, ws: "ws" + strings.TrimPrefix(hs.URL, "http")}
	link, err := netcap.Listen(strings.TrimPrefix(hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Close() })
	sc.link = link

	sc.healthy = sc.r.dial(t, "/out/lab")
	slow, _, err := websocket.DefaultDialer.Dial("ws://"+link.Addr()+"/out/lab", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	sc.pub = sc.r.dial(t, "/in/lab")
	sc.r.waitClients(t, "/out/lab", 1, 2, 0)

	sc.healthyMeter, sc.slowMeter = tslive.New(false), tslive.New(true)
	sc.healthyEnd = viewer(sc.healthy, true, func(b []byte, at time.Time) {
		sc.mu.Lock()
		sc.got = append(sc.got, b)
		sc.mu.Unlock()
		sc.healthyMeter.Add(b, at)
	})
	sc.slowEnd = viewer(slow, false, sc.slowMeter.Add)
	return sc
}

func (sc *slowScene) healthyGot() [][]byte {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.got
}

// checkSlow holds the slow viewer to the bounds: during the cap, pictures
// at most 1 s after the healthy viewer's, no 3 s without one, 95% of the
// audio frames; back live after it; never disconnected, connected once,
// valid TS.
func (sc *slowScene) checkSlow(t *testing.T, st TopicReport, rate float64, capped, lifted time.Time) {
	t.Helper()
	// Live is when the healthy viewer got a picture: a loaded machine
	// delays what every viewer gets (ffmpeg, the publisher, the relay's
	// reading), and that is not the slow link's doing. The figures
	// against the pictures' PTS are logged too.
	video, audio, hv := sc.slowMeter.Video(), sc.slowMeter.Audio(), sc.healthyMeter.Video()
	lead, aLead := tslive.Lead(video), tslive.Lead(audio)
	during := tslive.Arrived(video, capped, lifted)
	share := tslive.Share(audio, aLead, tslive.Step(audio), capped, lifted)
	t.Logf("stream %.0f kbit/s, viewer capped at half for %v: %d pictures (%.0f%%), %.1f%% of the audio frames; %d GOPs and %d KiB skipped",
		rate*8/1000, lifted.Sub(capped).Round(time.Second), len(during), float64(len(during))/lifted.Sub(capped).Seconds()/25*100,
		share*100, st.SkippedGops, st.SkippedBytes>>10)
	t.Logf("pictures of the cap behind the healthy viewer: %s; behind live by PTS: the slow viewer %s, the healthy one %s",
		spread(behind(during, hv)), spread(behindPTS(during, lead)), spread(behindPTS(tslive.Arrived(hv, capped, lifted), tslive.Lead(hv))))
	if w := slices.Max(append(behind(video, hv), 0)); w > time.Second {
		t.Errorf("pictures arrived up to %v after the healthy viewer's, more than 1 s", w)
	}
	for from := capped; from.Before(lifted.Add(-3 * time.Second)); from = from.Add(time.Second) {
		if len(tslive.Arrived(video, from, from.Add(3*time.Second))) == 0 {
			t.Errorf("the picture froze: none arrived in the 3 s from %v into the cap", from.Sub(capped).Round(time.Second))
			break
		}
	}
	if share < 0.95 {
		t.Errorf("%.1f%% of the audio frames of the cap arrived, want 95%%", share*100)
	}
	checkBackLive(t, video, hv, lifted)
	select {
	case err := <-sc.slowEnd:
		t.Errorf("the slow viewer was disconnected: %v", err)
	default:
	}
	if a := sc.link.Accepted(); a != 1 {
		t.Errorf("the slow viewer connected %d times, want once", a)
	}
	tscheck.CheckStream(t, sc.slowMeter.Bytes(), tscheck.Want{Video: 1, Audio: 1})
}

// checkHealthy: the healthy viewer got every message, in order, as sent,
// and was never disconnected.
func (sc *slowScene) checkHealthy(t *testing.T, sent [][]byte) {
	t.Helper()
	all := sc.healthyGot()
	got := all[:len(all)-1]
	if len(got) != len(sent) {
		t.Errorf("the healthy viewer got %d messages, %d were sent", len(got), len(sent))
	}
	for i := range min(len(got), len(sent)) {
		if !bytes.Equal(got[i], sent[i]) {
			t.Errorf("the healthy viewer's message %d is not the one sent", i)
			break
		}
	}
	select {
	case err := <-sc.healthyEnd:
		t.Errorf("the healthy viewer was disconnected: %v", err)
	default:
	}
}

// checkCounted: the skipping is counted per stream and per viewer (the
// slow one only) in /stats (st, taken at the end of the cap) and /metrics,
// and logged.
func (sc *slowScene) checkCounted(t *testing.T, st TopicReport) {
	t.Helper()
	if st.SkippedGops == 0 || st.SkippedBytes == 0 {
		t.Errorf("/stats counts %d GOPs and %d bytes skipped for the stream", st.SkippedGops, st.SkippedBytes)
	}
	for _, c := range st.Clients {
		if c.Role != Viewer {
			continue
		}
		isSlow := c.SkippedBytes > 0
		if isSlow == (c.Remote == sc.healthy.LocalAddr().String()) {
			t.Errorf("viewer %s skipped %d bytes", c.Remote, c.SkippedBytes)
		}
	}
	m := scrape.Get(t, sc.r.http.URL+"/metrics", nil)
	for _, c := range []struct {
		name string
		at   uint64 // /stats at the end of the cap: /metrics, later, has at least as much
	}{{"vw_relay_topic_skipped_gops_total", st.SkippedGops}, {"vw_relay_topic_skipped_bytes_total", st.SkippedBytes}} {
		if got := m.Value(t, c.name, "topic", "/out/lab"); got < float64(c.at) || got == 0 {
			t.Errorf("/metrics %s = %.0f, /stats said %d", c.name, got, c.at)
		}
	}
	if got, topic := m.Value(t, "vw_relay_skipped_bytes_total"), m.Value(t, "vw_relay_topic_skipped_bytes_total", "topic", "/out/lab"); got != topic {
		t.Errorf("/metrics vw_relay_skipped_bytes_total = %.0f, its one stream's %.0f", got, topic)
	}
	if !sc.logs.has("viewer behind: skipping what would arrive late") {
		t.Error("the relay never said the viewer was skipping")
	}
}

// hold lets a scenario run for d: how long a link stays capped, not a wait
// for something to happen.
func hold(d time.Duration) { <-time.After(d) }

// checkBackLive: from 2 s after lifted, every picture arrives, at most
// 200 ms after the healthy viewer's.
func checkBackLive(t *testing.T, video, healthy []tslive.Frame, lifted time.Time) {
	t.Helper()
	after := tslive.Arrived(video, lifted.Add(2*time.Second), time.Now())
	step := tslive.Step(video)
	if want := int(time.Since(lifted.Add(2*time.Second)) / step); len(after) < want*9/10 {
		t.Errorf("%d pictures arrived from 2 s after the cap lifted, want about %d", len(after), want)
	}
	if w := slices.Max(append(behind(after, healthy), 0)); w > 200*time.Millisecond {
		t.Errorf("2 s after the cap lifted pictures arrived up to %v after the healthy viewer's", w)
	}
	for i := 1; i < len(after); i++ {
		if gap := after[i].PTS - after[i-1].PTS; gap > step*3/2 {
			t.Errorf("2 s after the cap lifted pictures still skip: %v between two", gap)
			break
		}
	}
}

// behind returns how long after the healthy viewer each frame arrived.
func behind(fs, healthy []tslive.Frame) []time.Duration {
	var d []time.Duration
	for _, p := range tslive.Against(fs, healthy) {
		d = append(d, p.Behind())
	}
	return d
}

// behindPTS returns how far behind live each frame arrived, by its PTS.
func behindPTS(fs []tslive.Frame, lead time.Time) []time.Duration {
	d := make([]time.Duration, len(fs))
	for i, f := range fs {
		d[i] = tslive.Behind(f, lead)
	}
	return d
}

// spread sums up delays: median, 99th percentile, worst.
func spread(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	d = slices.Clone(d)
	slices.Sort(d)
	r := func(x time.Duration) time.Duration { return x.Round(time.Millisecond) }
	return fmt.Sprintf("median %v, p99 %v, worst %v (%d)", r(d[len(d)/2]), r(d[len(d)*99/100]), r(d[len(d)-1]), len(d))
}
