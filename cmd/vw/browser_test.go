package main

import (
	"os/exec"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// playRig is what the browser tests share: headless Chromium, a vw relay,
// and a vw stream fed by a real camera and microphone, whose rules are set
// with curl as a lab hoster sets them.
type playRig struct {
	b             *browser.Browser
	relay, stream *proc
	cam, mic      *testutil.Proc
	curl          string
	curlArgs      []string
}

// newPlayRig starts the rig with the README's MPEG-1 and MP2 feeds, or its
// H.264 and AAC ones; curlArgs go before the URL of every rule's POST.
func newPlayRig(t *testing.T, h264 bool, curlArgs ...string) *playRig {
	t.Helper()
	r := &playRig{curl: testutil.NeedTool(t, "curl"), curlArgs: curlArgs}
	testutil.NeedJSMpeg(t)
	r.b = browser.Start(t)
	r.relay = relayProc(t)
	r.stream = streamProc(t)
	r.cam = testutil.StartFeed(t, testutil.Feed{Video: true, H264: h264, Out: "http://" + r.stream.addr + "/ts/video0"})
	r.mic = testutil.StartFeed(t, testutil.Feed{Audio: true, H264: h264, Out: "http://" + r.stream.addr + "/ts/audio0"})
	return r
}

// post POSTs a rule to vw stream's API with curl.
func (r *playRig) post(t *testing.T, path, body string) {
	t.Helper()
	args := append([]string{"-sS", "--fail-with-body", "-X", "POST"}, r.curlArgs...)
	args = append(args, "http://"+r.stream.addr+"/api/"+path, "-d", body)
	if out, err := exec.Command(r.curl, args...).CombinedOutput(); err != nil {
		t.Fatalf("curl %s %s: %v %s", path, body, err, out)
	}
}

// TestBrowserEndToEnd is the user's whole path: real ffmpeg camera and
// microphone feeds → vw stream → vw relay → the player page in headless
// Chromium. Video and audio decode; a mute with curl stops the audio while
// the video carries on; an unmute brings it back; moving the destination to
// a route the page does not watch stalls the page, and moving it back lets
// the page recover on its own.
func TestBrowserEndToEnd(t *testing.T) {
	r := newPlayRig(t, false)
	b, relay, stream := r.b, r.relay, r.stream
	r.post(t, "streams", `{"stream":"front","feeds":["video0","audio0"]}`)
	r.post(t, "destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/front","id":"0"}`)

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
	r.post(t, "streams", `{"stream":"front","feeds":["video0"]}`)
	muted := page.WaitPlayer(10*time.Second, "kept decoding video after the mute", func(q browser.Player) bool {
		return q.Frames > p.Frames+50
	})
	after := page.WaitPlayer(10*time.Second, "kept decoding video while muted", func(q browser.Player) bool {
		return q.Frames > muted.Frames+50
	})
	if after.AudioFrames != muted.AudioFrames {
		t.Fatalf("audio still decoding while muted: %d audio frames, then %d", muted.AudioFrames, after.AudioFrames)
	}

	r.post(t, "streams", `{"stream":"front","feeds":["video0","audio0"]}`)
	unmuted := page.WaitPlayer(15*time.Second, "decoded audio again after the unmute", func(q browser.Player) bool {
		return q.AudioFrames > after.AudioFrames+50 && q.Frames > after.Frames+25
	})

	// Hot swap away: the page's route goes quiet.
	r.post(t, "destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/elsewhere","id":"0"}`)
	testutil.Eventually(t, 10*time.Second, func() bool {
		ts, ok := topicStats(t, relay, "out/lab1/front")
		return ok && ts.Publishers == 0
	}, "the destination did not leave the page's route")
	quiet, err := page.Player()
	if err != nil {
		t.Fatal(err)
	}
	// And back: the page recovers without a reload.
	r.post(t, "destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/front","id":"0"}`)
	back := page.WaitPlayer(20*time.Second, "recovered after the destination came back", func(q browser.Player) bool {
		return q.Frames > quiet.Frames+50 && q.AudioFrames > quiet.AudioFrames+50
	})
	t.Logf("muted at %+v, unmuted %+v, recovered %+v", muted, unmuted, back)
	page.Screenshot("recovered")

	if !r.cam.Alive() || !r.mic.Alive() {
		t.Fatal("a rule change touched ffmpeg")
	}
}
