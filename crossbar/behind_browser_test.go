package crossbar

import (
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/netcap"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tslive"
	"github.com/vwlab/vw/jsmpeg"
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
// websocket through a netcap proxy): the picture keeps moving at a reduced
// frame rate, the sound keeps playing, window.vwPlayer.behindMs stays at
// most a second throughout, the page says it is on a slow connection, and
// its connection stays up; once the cap lifts the full frame rate returns
// and the notice goes.
func TestSlowViewerInChromium(t *testing.T) {
	if !jsmpeg.LibraryAvailable() {
		if testutil.InCI() {
			t.Fatal("the jsmpeg library is not embedded: " + jsmpeg.LibraryHelp)
		}
		t.Skip("the jsmpeg library is not embedded: " + jsmpeg.LibraryHelp)
	}
	testutil.NeedTool(t, "ffmpeg")
	b := browser.Start(t)
	r := startRelay(t, Config{})
	link, err := netcap.Listen(strings.TrimPrefix(r.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	startPublisher(t, r.ws+"/in/lab1/cam")
	meter := tslive.New(false)
	viewer(r.dial(t, "/out/lab1/cam"), false, meter.Add)

	page := b.Open("http://" + link.Addr() + "/play/lab1/cam")
	page.WaitPlayer(20*time.Second, "played 50 video frames with audio", func(v browser.Player) bool {
		return v.State == "playing" && v.Frames > 50 && v.AudioFrames > 0
	})
	hold(2 * time.Second)
	rate := meter.Rate(3 * time.Second)
	link.Down.SetRate(rate / 2)
	capped := time.Now()
	during := samplePlayer(t, page, 15*time.Second)
	page.Screenshot("capped")
	link.Down.SetRate(0)
	lifted := time.Now()
	after := samplePlayer(t, page, 8*time.Second)

	first, last := during[0], during[len(during)-1]
	secs := last.at.Sub(first.at).Seconds()
	fps, aps := (last.frames-first.frames)/secs, (last.audio-first.audio)/secs
	worst, reduced := 0.0, false
	for _, s := range during {
		worst = max(worst, s.behindMs)
		if s.reduced && s.detail == "reduced frame rate: slow connection" {
			reduced = true
		}
	}
	t.Logf("stream %.0f kbit/s, the page's link capped at half for %v: %.1f pictures and %.1f audio frames a second, behindMs up to %.0f",
		rate*8/1000, lifted.Sub(capped).Round(time.Second), fps, aps, worst)
	// The sound takes almost half of this link (MP2 at 64 kbit/s is
	// 116 kbit/s in TS packets): the picture gets about a keyframe a GOP.
	if fps < 1 || fps > 22 {
		t.Errorf("%.1f pictures a second on a link at half the stream's rate, want a reduced rate, 1 to 22 of 25", fps)
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
	// jsmpeg decodes 44100/1152 = 38.3 MP2 frames a second.
	if aps < 0.9*38.3 {
		t.Errorf("%.1f audio frames a second decoded during the cap, want the sound whole (38.3)", aps)
	}
	if worst > 1000 {
		t.Errorf("behindMs reached %.0f during the cap, want at most 1000", worst)
	}
	if !reduced {
		t.Error(`the page never said "reduced frame rate: slow connection" during the cap`)
	}
	if last.connects != 1 || after[len(after)-1].connects != 1 {
		t.Errorf("the page connected %.0f times, want once", after[len(after)-1].connects)
	}
	// Back: from 3 s after the lift, the full frame rate; the notice stays
	// 3 s after the last gap, so it is gone from 5 s.
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
	if fps := (end.frames - from.frames) / end.at.Sub(from.at).Seconds(); fps < 22 {
		t.Errorf("%.1f pictures a second from 3 s after the cap lifted, want the full rate (25)", fps)
	}
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
