package crossbar

import (
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/netcap"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tslive"
)

// slowSample is what the page showed at one moment of the cap.
type slowSample struct {
	at       time.Time
	frames   float64
	audio    float64
	behindMs float64
	reduced  bool
	detail   string
	connects float64
}

// The player in headless Chromium on a link capped at half the stream's
// rate for 15 s (a real ffmpeg stream through the relay, the page and its
// websocket through a netcap proxy), for both players (jsmpeg for MPEG-1,
// the MSE page for H.264): the picture keeps moving at a reduced frame
// rate, the page says it is on a slow connection, and its connection stays
// up; once the cap lifts the full frame rate returns and the notice goes.
// The jsmpeg page also plays the sound whole meanwhile, and its behindMs
// (how late the picture on screen arrived) stays at most a second. The
// browser's own player (MSE) plays a stream only where it has both
// pictures and sound, so it goes on from the next keyframe after a gap,
// its sound with it, and its behindMs is only how far the picture is
// behind the newest media buffered: both are logged there, not held to
// the bound.
func TestSlowViewerInChromium(t *testing.T) {
	testutil.NeedJSMpeg(t)
	testutil.NeedTool(t, "ffmpeg")
	b := browser.Start(t)
	for _, tc := range []struct {
		name  string
		feeds testutil.Feed
		mse   bool
	}{
		{"mpeg1", mpeg1Codecs, false},
		{"h264", h264Codecs, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mse {
				testutil.NeedMSE(t)
			}
			slowViewerInChromium(t, b, tc.feeds, !tc.mse)
		})
	}
}

// slowViewerInChromium runs TestSlowViewerInChromium for one player: it
// samples the page 3 s before the cap, 15 s capped and 8 s after.
func slowViewerInChromium(t *testing.T, b *browser.Browser, feeds testutil.Feed, jsmpeg bool) {
	r := startRelay(t, Config{})
	link, err := netcap.Listen(strings.TrimPrefix(r.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	startPublisherCodec(t, r.ws+"/in/lab1/cam", nil, feeds)
	meter := tslive.New(false)
	viewer(r.dial(t, "/out/lab1/cam"), false, meter.Add)

	page := b.Open("http://" + link.Addr() + "/play/lab1/cam")
	defer page.Close()
	page.WaitPlayer(30*time.Second, "played 50 video frames with audio", func(v browser.Player) bool {
		return v.State == "playing" && v.Frames > 50 && v.AudioFrames > 20
	})
	before := samplePlayer(t, page, 3*time.Second)
	rate := meter.Rate(3 * time.Second)
	link.Down.SetRate(rate / 2)
	capped := time.Now()
	during := samplePlayer(t, page, 15*time.Second)
	page.Screenshot("capped")
	link.Down.SetRate(0)
	lifted := time.Now()
	after := samplePlayer(t, page, 8*time.Second)

	full := perSecond(before)
	checkCapped(t, during, full, rate, capped, lifted, jsmpeg)
	if last := during[len(during)-1]; last.connects != 1 || after[len(after)-1].connects != 1 {
		t.Errorf("the page connected %.0f times, want once", after[len(after)-1].connects)
	}
	// The stream's own picture rate, from its timestamps: what the page
	// must play again after the lift. (The rate the page showed before the
	// cap is no reference: the MSE page plays faster while it catches up.)
	stream := float64(time.Second) / float64(tslive.Step(meter.Video()))
	checkLifted(t, after, stream, lifted)
}

// checkCapped holds the page to its bounds during the cap: a reduced
// frame rate but never 3 s of the same picture, the notice; for jsmpeg the
// sound whole and behindMs at most a second.
func checkCapped(t *testing.T, during []slowSample, full frameRates, rate float64, capped, lifted time.Time, jsmpeg bool) {
	t.Helper()
	now := perSecond(during)
	fps, aps := now.frames, now.audio
	worst, reduced := 0.0, false
	for _, s := range during {
		worst = max(worst, s.behindMs)
		if s.reduced && s.detail == "reduced frame rate: slow connection" {
			reduced = true
		}
	}
	t.Logf("stream %.0f kbit/s, the page's link capped at half for %v: %.1f pictures and %.1f sound frames a second (%.1f and %.1f before), behindMs up to %.0f",
		rate*8/1000, lifted.Sub(capped).Round(time.Second), fps, aps, full.frames, full.audio, worst)
	if fps < 1 || fps > 0.9*full.frames {
		t.Errorf("%.1f pictures a second on a link at half the stream's rate, want a reduced rate: 1 or more, less than %.1f", fps, 0.9*full.frames)
	}
	for i := range during {
		j := i
		for j < len(during) && during[j].at.Sub(during[i].at) < 3*time.Second {
			j++
		}
		if j < len(during) && during[j].frames == during[i].frames {
			t.Errorf("the picture froze for 3 s from %v into the cap", during[i].at.Sub(capped).Round(100*time.Millisecond))
			break
		}
	}
	if jsmpeg && aps < 0.9*full.audio {
		t.Errorf("%.1f sound frames a second during the cap, %.1f before: want the sound whole", aps, full.audio)
	}
	if jsmpeg && worst > 1000 {
		t.Errorf("behindMs reached %.0f during the cap, want at most 1000", worst)
	}
	if !reduced {
		t.Error(`the page never said "reduced frame rate: slow connection" during the cap`)
	}
}

// checkLifted: from 3 s after the lift, the stream's full picture rate;
// the notice stays 3 s after the last gap, so it is gone from 5 s.
func checkLifted(t *testing.T, after []slowSample, stream float64, lifted time.Time) {
	t.Helper()
	var from slowSample
	lastReduced := time.Duration(0)
	for _, s := range after {
		if s.reduced {
			lastReduced = s.at.Sub(lifted)
		}
		if s.at.Sub(lifted) >= 3*time.Second && from.at.IsZero() {
			from = s
		}
	}
	t.Logf("the page said it was on a slow connection until %v after the cap lifted", lastReduced.Round(100*time.Millisecond))
	if lastReduced >= 5*time.Second {
		t.Errorf("the page still said it was on a slow connection %v after the cap lifted", lastReduced.Round(100*time.Millisecond))
	}
	end := after[len(after)-1]
	if fps := (end.frames - from.frames) / end.at.Sub(from.at).Seconds(); fps < 0.9*stream {
		t.Errorf("%.1f pictures a second from 3 s after the cap lifted, want the stream's full rate (%.1f)", fps, stream)
	}
}

// frameRates are pictures and sound frames a second.
type frameRates struct{ frames, audio float64 }

// perSecond is the pictures and sound frames a second over samples.
func perSecond(ss []slowSample) (r frameRates) {
	first, last := ss[0], ss[len(ss)-1]
	secs := last.at.Sub(first.at).Seconds()
	r.frames, r.audio = (last.frames-first.frames)/secs, (last.audio-first.audio)/secs
	return r
}

// samplePlayer reads window.vwPlayer every 250 ms for d.
func samplePlayer(t *testing.T, page *browser.Page, d time.Duration) []slowSample {
	t.Helper()
	var out []slowSample
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		v, err := browser.Eval[map[string]any](page, `(() => { const v = window.vwPlayer; return {frames: v.frames,
			audio: v.audioFrames, behindMs: v.behindMs || 0, reduced: !!v.reducedFrameRate, detail: v.detail, connects: v.connects} })()`)
		if err != nil {
			t.Fatalf("reading window.vwPlayer: %v", err)
		}
		detail, _ := v["detail"].(string)
		reduced, _ := v["reduced"].(bool)
		num := func(k string) float64 { f, _ := v[k].(float64); return f }
		out = append(out, slowSample{at: time.Now(), frames: num("frames"), audio: num("audio"), behindMs: num("behindMs"),
			reduced: reduced, detail: detail, connects: num("connects")})
	}
	return out
}
