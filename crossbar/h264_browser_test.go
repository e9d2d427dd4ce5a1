package crossbar

import (
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// needPlayers skips (fails in CI) a test when the player libraries are not
// embedded.
func needPlayers(t *testing.T) {
	t.Helper()
	testutil.NeedJSMpeg(t)
	testutil.NeedMSE(t)
}

// TestH264PlayerInChromium plays a real libx264 + aac stream through the
// relay in headless Chromium: /play/{x} serves the MSE page since the relay
// has the stream's PMT, video frames climb past 50, sound plays, the picture
// stays near the live edge, and the index says the codec. When the relay
// goes away and comes back, the page reconnects and plays again by itself.
func TestH264PlayerInChromium(t *testing.T) {
	needPlayers(t)
	testutil.NeedTool(t, "ffmpeg")
	b := browser.Start(t)

	relay := startRestartable(t)

	pub := startPublisherCodec(t, relay.ws+"/in/lab1/cam", nil, h264Codecs)
	testutil.Eventually(t, 10*time.Second, func() bool { return relay.cur.codecOf("lab1/cam") == "h264" }, "the relay has not seen the H.264 PMT")
	page := b.Open(relay.http.URL + "/play/lab1/cam")
	v := page.WaitPlayer(30*time.Second, "played 50 H.264 frames with sound", func(v browser.Player) bool {
		return v.State == "playing" && v.Frames > 50 && v.AudioFrames > 20
	})
	t.Logf("playing: %v", v)
	if v.Codec != "h264" || v.Audio != "running" || v.AudioLevel < 0.05 {
		t.Errorf("want the h264 page with sound running: %v", v)
	}
	page.Screenshot("playing")
	v = page.WaitPlayer(10*time.Second, "kept playing near the live edge", func(q browser.Player) bool {
		return q.Frames > v.Frames+50 && q.AudioFrames > v.AudioFrames+50 && q.BehindMs < 1000
	})

	index := b.Open(relay.http.URL + "/")
	if text, err := browser.Eval[string](index, `document.body.innerText`); err != nil || !strings.Contains(text, "H.264/AAC") {
		t.Errorf("the index reads %q (%v), want the stream's codec H.264/AAC", text, err)
	}
	index.Close()

	if err := pub.stop(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	relay.down()
	page.WaitPlayer(10*time.Second, "shown that it is reconnecting", func(q browser.Player) bool { return q.State == "reconnecting" })
	relay.up(t)
	startPublisherCodec(t, relay.ws+"/in/lab1/cam", nil, h264Codecs)
	v = page.WaitPlayer(30*time.Second, "played again after the relay came back", func(q browser.Player) bool {
		return q.State == "playing" && q.Connects > v.Connects && q.Frames > v.Frames+50 && q.AudioFrames > v.AudioFrames+20
	})
	t.Logf("after the relay returned: %v", v)
	page.Screenshot("recovered")
}

// TestH264UnmuteHintInChromium opens the H.264 player in a browser that
// blocks sound until a gesture: the picture plays anyway, the page offers
// to unmute, and a click brings the sound.
func TestH264UnmuteHintInChromium(t *testing.T) {
	needPlayers(t)
	testutil.NeedTool(t, "ffmpeg")
	b := browser.Start(t, browser.BlockAutoplay())
	r := startRelay(t, Config{})
	startPublisherCodec(t, r.ws+"/in/cam", nil, h264Codecs)
	testutil.Eventually(t, 10*time.Second, func() bool { return r.codecOf("cam") == "h264" }, "the relay has not seen the H.264 PMT")
	page := b.Open(r.http.URL + "/play/cam")
	v := page.WaitPlayer(30*time.Second, "played the picture with the sound blocked", func(v browser.Player) bool {
		return v.Frames > 25 && v.Audio == "suspended"
	})
	if v.AudioFrames != 0 {
		t.Errorf("sound counted as heard while blocked: %v", v)
	}
	clickUnmute(t, page)
	page.WaitPlayer(10*time.Second, "played sound after a click", func(v browser.Player) bool {
		return v.Audio == "running" && v.AudioFrames > 20 && v.AudioLevel > 0.05
	})
	testutil.Eventually(t, 5*time.Second, func() bool { return !unmuteShown(page) }, "the unmute hint stays after the sound is on")
}

// TestPlayerSwitchesCodecInChromium opens each stream on the other
// family's page (as when the page was served before the stream was live):
// the page reads the codec off the stream's PMT and puts the right player
// in its place, which plays.
func TestPlayerSwitchesCodecInChromium(t *testing.T) {
	needPlayers(t)
	testutil.NeedTool(t, "ffmpeg")
	b := browser.Start(t)
	r := startRelay(t, Config{})
	startPublisherCodec(t, r.ws+"/in/h264", nil, h264Codecs)
	startPublisher(t, r.ws+"/in/mpeg1")

	page := b.Open(r.http.URL + "/play/h264?codec=mpeg1")
	v := page.WaitPlayer(30*time.Second, "switched to the H.264 player and played", func(v browser.Player) bool {
		return v.Codec == "h264" && v.Frames > 25
	})
	t.Logf("h264 stream on the jsmpeg page: %v", v)
	page = b.Open(r.http.URL + "/play/mpeg1?codec=h264")
	v = page.WaitPlayer(30*time.Second, "switched to the jsmpeg player and played", func(v browser.Player) bool {
		return v.Codec == "mpeg1" && v.Frames > 25
	})
	if loc, err := browser.Eval[string](page, `location.search`); err != nil || loc != "?codec=mpeg1" {
		t.Errorf("the page's address ends %q (%v), want ?codec=mpeg1", loc, err)
	}
	t.Logf("mpeg1 stream on the H.264 page: %v", v)
}
