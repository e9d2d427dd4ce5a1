package main

import (
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// TestBrowserH264 is the user's whole path for H.264: real libx264 camera and
// AAC microphone feeds → vw stream → vw relay → the player page in headless
// Chromium. The picture plays and so does the sound; a mute with curl keeps
// the picture moving (a browser's decoder would freeze it if the audio
// track ran dry) and makes the sound silent; an unmute brings the tone back;
// the relay restarts and the page recovers by itself. The local preview on
// vw stream plays the same stream.
func TestBrowserH264(t *testing.T) {
	testutil.NeedMSE(t)
	// As the README says to send a rule (TestBrowserEndToEnd sends them as
	// the original tool's sessions did, with no type).
	r := newPlayRig(t, true, "-H", "Content-Type: application/json")
	b, relay, stream := r.b, r.relay, r.stream
	waitFeeds(t, stream, "video0", "h264", "audio0", "aac")
	r.post(t, "streams", `{"stream":"front","feeds":["video0","audio0"]}`)
	r.post(t, "destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/front","id":"0"}`)

	preview := b.Open(stream.baseURL + "/play/front")
	preview.WaitPlayer(30*time.Second, "played vw stream's local preview", func(p browser.Player) bool {
		return p.Codec == "h264" && p.Frames > 25 && p.AudioFrames > 0
	})
	preview.Close()

	page := b.Open("http://" + relay.addr + "/play/lab1/front")
	p := page.WaitPlayer(30*time.Second, "played video and sound", func(p browser.Player) bool {
		return p.Frames > 50 && p.AudioFrames > 50 && p.AudioLevel > 0.05
	})
	t.Logf("playing: %v", p)
	page.Screenshot("playing")

	// Mute: the sound goes silent within what was in flight (the page
	// buffers a fraction of a second), the picture keeps moving.
	r.post(t, "streams", `{"stream":"front","feeds":["video0"]}`)
	muted := page.WaitPlayer(10*time.Second, "gone silent after the mute", func(q browser.Player) bool {
		return q.AudioLevel == 0 && q.Frames > p.Frames
	})
	after := page.WaitPlayer(10*time.Second, "kept playing video while muted", func(q browser.Player) bool {
		return q.Frames > muted.Frames+50
	})
	if after.AudioFrames != muted.AudioFrames || after.AudioLevel != 0 || after.State != "playing" {
		t.Fatalf("sound while muted: %v, then %v", muted, after)
	}

	r.post(t, "streams", `{"stream":"front","feeds":["video0","audio0"]}`)
	unmuted := page.WaitPlayer(15*time.Second, "played sound again after the unmute", func(q browser.Player) bool {
		return q.AudioFrames > after.AudioFrames+50 && q.AudioLevel > 0.05 && q.Frames > after.Frames+25
	})
	t.Logf("muted %v; unmuted %v", after, unmuted)

	relay.kill()
	page.WaitPlayer(10*time.Second, "shown that it is reconnecting", func(q browser.Player) bool { return q.State == "reconnecting" })
	relay = startVW(t, relay.addr, []string{"VW_RELAY_LISTEN=" + relay.addr}, "relay")
	back := page.WaitPlayer(30*time.Second, "played again after the relay restart", func(q browser.Player) bool {
		return q.State == "playing" && q.Frames > unmuted.Frames+50 && q.AudioFrames > unmuted.AudioFrames+50 && q.BehindMs < 1000
	})
	t.Logf("after the relay restart: %v", back)
	page.Screenshot("recovered")
	if !r.cam.Alive() || !r.mic.Alive() {
		t.Fatal("a rule change or the relay restart touched ffmpeg")
	}
}
