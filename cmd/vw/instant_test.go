package main

import (
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// instantLoads is how many times each instant-start test opens the page.
const instantLoads = 10

// load is one page load's figures: what a viewer waits for a picture, and
// how far behind live the picture is 3 s after the page started.
type load struct {
	FirstFrameMs float64 `json:"firstFrameMs"`
	BehindMs     float64 `json:"behindMs"`
	Frames       int     `json:"frames"`
	AudioFrames  int     `json:"audioFrames"`
}

// TestInstantStartInChromium opens the player ten times, at random moments,
// on a stream whose camera sends a keyframe every 4 s (ffmpeg -g 100 at 25
// fps), through vw stream → vw relay and on vw stream's own preview. The
// loads must show a picture well before the next keyframe would have come
// (without the keyframe cache the wait is anything up to 4 s, 2 s on
// average): the median within 1.5 s of the page's start and every one
// within 3 s, bounds a 2-core machine busy with other tests meets (it
// measured a median of 0.85 s and a worst of 2.2 s at a load average of
// 20). And each must be near the live edge 3 s after its start (within
// 1 s; without catching up, a viewer stays as far behind as the GOP it was
// replayed). The figures of every load and their medians are saved as
// artefacts (instant-start-*.json); make bench prints exact ones.
func TestInstantStartInChromium(t *testing.T) {
	b := browser.Start(t)
	relay := relayProc(t)
	stream := streamProc(t)
	ffmpeg(t, "video", "http://"+stream.addr+"/ts/video0", "-g", "100")
	ffmpeg(t, "audio", "http://"+stream.addr+"/ts/audio0")
	postRule(t, stream, "/api/streams", `{"stream":"front","feeds":["video0","audio0"]}`)
	postRule(t, stream, "/api/destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/front","id":"0"}`)

	// A first load waits for the stream to flow and for a keyframe.
	warm := b.Open(relay.baseURL + "/play/lab1/front")
	warm.WaitPlayer(20*time.Second, "played", func(p browser.Player) bool { return p.Frames > 25 })
	warm.Close()

	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for _, tc := range []struct{ name, url string }{
		{"relay", relay.baseURL + "/play/lab1/front"},
		{"preview", stream.baseURL + "/play/front"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var loads []load
			for i := range instantLoads {
				// A random moment of the 4 s GOP.
				time.Sleep(time.Duration(rng.Int63n(int64(time.Second))))
				l := measureLoad(t, b, tc.url)
				t.Logf("load %d: first picture after %.0f ms, %.0f ms behind live at 3 s (%d frames, %d audio frames)",
					i, l.FirstFrameMs, l.BehindMs, l.Frames, l.AudioFrames)
				loads = append(loads, l)
			}
			first, behind := medians(loads)
			t.Logf("median of %d loads: first picture after %.0f ms, %.0f ms behind live at 3 s", len(loads), first, behind)
			saveLoads(t, "instant-start-"+tc.name+".json", loads)
			if first > 1500 {
				t.Errorf("median first picture after %.0f ms, want within 1.5 s (the GOP is 4 s)", first)
			}
			for i, l := range loads {
				if l.FirstFrameMs > 3000 {
					t.Errorf("load %d: first picture after %.0f ms, want within 3 s (the GOP is 4 s)", i, l.FirstFrameMs)
				}
				if l.BehindMs > 1000 {
					t.Errorf("load %d: %.0f ms behind live 3 s after the page started, want within 1 s", i, l.BehindMs)
				}
			}
		})
	}
}

// TestInstantStartAfterReconnect has the player lose its connection (its
// websocket closed under it, as a network blip would) while a stream with
// a 4 s GOP plays: it reconnects on its own, gets the relay's cached GOP,
// and is back at the live edge at once, starting from a keyframe: not on
// top of pictures from before the cut, nor after the next keyframe.
func TestInstantStartAfterReconnect(t *testing.T) {
	b := browser.Start(t)
	relay := relayProc(t)
	stream := streamProc(t)
	ffmpeg(t, "video", "http://"+stream.addr+"/ts/video0", "-g", "100")
	postRule(t, stream, "/api/destinations", `{"stream":"video0","destination":"ws://`+relay.addr+`/in/lab1/cam","id":"0"}`)
	page := b.Open(relay.baseURL + "/play/lab1/cam")
	page.WaitPlayer(20*time.Second, "played", func(p browser.Player) bool { return p.Frames > 25 })
	for i := range 3 {
		type clock struct {
			Now    float64 `json:"now"`
			Frames int     `json:"frames"`
		}
		// Note whether the first picture written to the decoder after the
		// cut starts with a sequence header, then cut.
		cut, err := browser.Eval[clock](page, `(() => {
			const v = window.vwJSMpeg.video, write = v.write;
			window.vwFirstIsKey = null;
			v.write = (pts, bufs) => {
				if (window.vwFirstIsKey === null) {
					const b = bufs[0];
					window.vwFirstIsKey = b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0xb3;
				}
				return write(pts, bufs);
			};
			window.vwJSMpeg.source.socket.close();
			return {now: performance.now(), frames: window.vwPlayer.frames}; })()`)
		if err != nil {
			t.Fatal(err)
		}
		p := page.WaitPlayer(10*time.Second, "reconnected", func(p browser.Player) bool { return p.Connects == i+2 })
		// The first picture of the new connection: frames climb past what
		// the old one decoded.
		var back clock
		testutil.Eventually(t, 10*time.Second, func() bool {
			back, err = browser.Eval[clock](page, `({now: performance.now(), frames: window.vwPlayer.frames})`)
			return err == nil && back.Frames > p.Frames
		}, "no picture after reconnecting")
		gap := back.Now - cut.Now
		later := page.WaitPlayer(10*time.Second, "played on", func(q browser.Player) bool { return q.Frames > back.Frames+50 })
		t.Logf("reconnect %d: a picture %.0f ms after the connection was lost (the player waits 500 ms before reconnecting); %d ms behind live 50 frames later",
			i, gap, later.BehindMs)
		if key, err := browser.Eval[bool](page, `window.vwFirstIsKey === true`); err != nil || !key {
			t.Errorf("reconnect %d: the new connection's first picture is not a keyframe (%v)", i, err)
		}
		if gap > 3000 {
			t.Errorf("reconnect %d: the first picture came %.0f ms after the connection was lost, want within 3 s (the GOP is 4 s)", i, gap)
		}
		if later.BehindMs > 1000 {
			t.Errorf("reconnect %d: %d ms behind live after reconnecting, want within 1 s", i, later.BehindMs)
		}
	}
}

// measureLoad opens url in a new tab and returns its figures 3 s after the
// page started, by the page's own clock.
func measureLoad(t *testing.T, b *browser.Browser, url string) load {
	t.Helper()
	page := b.Open(url)
	defer page.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := browser.Eval[struct {
			Now    float64 `json:"now"`
			Player load    `json:"player"`
		}](page, `({now: performance.now(), player: {firstFrameMs: window.vwPlayer.firstFrameMs || 0,
			behindMs: window.vwPlayer.behindMs || 0, frames: window.vwPlayer.frames, audioFrames: window.vwPlayer.audioFrames}})`)
		if err != nil {
			t.Fatalf("reading the player: %v", err)
		}
		if v.Now >= 3000 {
			if v.Player.Frames == 0 {
				page.Screenshot("no-picture")
				t.Fatalf("%s: no picture 3 s after the page started", url)
			}
			return v.Player
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the page's clock did not reach 3 s", url)
		}
		time.Sleep(50 * time.Millisecond) // the page's clock is what is waited for
	}
}

// medians returns the median first-picture time and delay of loads.
func medians(loads []load) (first, behind float64) {
	f := make([]float64, 0, len(loads))
	d := make([]float64, 0, len(loads))
	for _, l := range loads {
		f = append(f, l.FirstFrameMs)
		d = append(d, l.BehindMs)
	}
	return median(f), median(d)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// saveLoads writes the loads and their medians as a test artefact.
func saveLoads(t *testing.T, name string, loads []load) {
	t.Helper()
	first, behind := medians(loads)
	b, err := json.MarshalIndent(map[string]any{
		"loads":              loads,
		"medianFirstFrameMs": first,
		"medianBehindMs":     behind,
		"gop":                "4 s (ffmpeg -g 100 at 25 fps)",
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(browser.ArtifactDir(t), name)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("figures saved to %s", file)
}
