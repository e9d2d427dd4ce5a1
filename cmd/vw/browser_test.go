package main

import (
	"os/exec"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// TestBrowserEndToEnd is the user's whole path: real ffmpeg camera and
// microphone feeds → vw stream → vw relay → the player page in headless
// Chromium. Video and audio decode; a mute with curl stops the audio while
// the video carries on; an unmute brings it back; moving the destination to
// a route the page does not watch stalls the page, and moving it back lets
// the page recover on its own.
func TestBrowserEndToEnd(t *testing.T) {
	curl := testutil.NeedTool(t, "curl")
	testutil.NeedJSMpeg(t)
	b := browser.Start(t)
	relay := relayProc(t)
	stream := streamProc(t)
	cam := ffmpeg(t, "video", "http://"+stream.addr+"/ts/video0")
	mic := ffmpeg(t, "audio", "http://"+stream.addr+"/ts/audio0")
	api := "http://" + stream.addr + "/api/"
	curlPost := func(path, body string) {
		t.Helper()
		out, err := exec.Command(curl, "-sS", "--fail-with-body", "-X", "POST", api+path, "-d", body).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s %s: %v %s", path, body, err, out)
		}
	}
	curlPost("streams", `{"stream":"front","feeds":["video0","audio0"]}`)
	curlPost("destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/front","id":"0"}`)

	// The lab host's own preview plays the feed before any relay is involved.
	preview := b.Open(stream.baseURL + "/play/video0")
	preview.WaitPlayer(20*time.Second, "played vw stream's local preview", func(p browser.Player) bool { return p.Frames > 25 })
	preview.Close()

	page := b.Open("http://" + relay.addr + "/play/lab1/front")
	p := page.WaitPlayer(30*time.Second, "decoded video and audio", func(p browser.Player) bool {
		return p.Frames > 50 && p.AudioFrames > 50
	})
	t.Logf("playing: %+v", p)
	page.Screenshot("playing")

	// Mute: audio stands still while video climbs. Frames already on
	// their way when the POST answers may still decode (how many depends
	// on how far behind a busy browser is), so let 50 video frames (2 s)
	// pass first. That no audio packet leaves vw stream once the POST has
	// answered is checked on the bytes (TestExamples, agg's
	// TestFFmpegMuteUnmute), where it can be exact.
	curlPost("streams", `{"stream":"front","feeds":["video0"]}`)
	muted := page.WaitPlayer(10*time.Second, "kept decoding video after the mute", func(q browser.Player) bool {
		return q.Frames > p.Frames+50
	})
	after := page.WaitPlayer(10*time.Second, "kept decoding video while muted", func(q browser.Player) bool {
		return q.Frames > muted.Frames+50
	})
	if after.AudioFrames != muted.AudioFrames {
		t.Fatalf("audio still decoding while muted: %d audio frames, then %d", muted.AudioFrames, after.AudioFrames)
	}

	curlPost("streams", `{"stream":"front","feeds":["video0","audio0"]}`)
	unmuted := page.WaitPlayer(15*time.Second, "decoded audio again after the unmute", func(q browser.Player) bool {
		return q.AudioFrames > after.AudioFrames+50 && q.Frames > after.Frames+25
	})

	// Hot swap away: the page's route goes quiet.
	curlPost("destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/elsewhere","id":"0"}`)
	testutil.Eventually(t, 10*time.Second, func() bool {
		ts, ok := topicStats(t, relay, "out/lab1/front")
		return ok && ts.Publishers == 0
	}, "the destination did not leave the page's route")
	quiet, err := page.Player()
	if err != nil {
		t.Fatal(err)
	}
	// And back: the page recovers without a reload.
	curlPost("destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/front","id":"0"}`)
	back := page.WaitPlayer(20*time.Second, "recovered after the destination came back", func(q browser.Player) bool {
		return q.Frames > quiet.Frames+50 && q.AudioFrames > quiet.AudioFrames+50
	})
	t.Logf("muted at %+v, unmuted %+v, recovered %+v", muted, unmuted, back)
	page.Screenshot("recovered")

	if !cam.Alive() || !mic.Alive() {
		t.Fatal("a rule change touched ffmpeg")
	}
}
