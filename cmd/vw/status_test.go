package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// TestStatusPage opens vw stream's status page (/) in Chromium and watches
// it as an operator would: a stream rule and a destination on a relay, then
// real ffmpeg feeds starting. The page shows each feed coming up with its
// codecs and size and its bit rate climbing from 0, the stream on air, a
// mute, and the destination going from connected to backing off when the
// relay goes away. Screenshots of both states are kept as artefacts.
func TestStatusPage(t *testing.T) {
	b := browser.Start(t)
	relay := relayProc(t)
	stream := streamProc(t)
	postRule(t, stream, "/api/streams", `{"stream":"front","feeds":["video0","audio0"]}`)
	postRule(t, stream, "/api/destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/front?token=secret","id":"0"}`)

	page := b.Open(stream.baseURL + "/")
	// text returns what the page shows in one cell (CSS selector).
	text := func(sel string) string {
		s, err := browser.Eval[string](page, `(document.querySelector(`+strconv.Quote(sel)+`) || {}).textContent || ""`)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	waitText := func(within time.Duration, sel string, ok func(string) bool, what string) string {
		t.Helper()
		var last string
		if !testutil.WaitFor(within, func() bool { last = text(sel); return ok(last) }) {
			t.Fatalf("after %v, %s: the page shows %q (%s)", within, what, last, text("main"))
		}
		return last
	}
	feed := func(name string, col int) string {
		return `#feeds tr[data-name="` + name + `"] td:nth-child(` + strconv.Itoa(col) + `)`
	}
	dest := `#destinations tr[data-name="0"] td.state`
	is := func(want string) func(string) bool { return func(s string) bool { return s == want } }

	waitText(10*time.Second, dest, is("connected"), "the destination before any feed")
	if got := text(feed("video0", 2)); got != "down" {
		t.Fatalf("video0 before ffmpeg starts: %q, want down", got)
	}
	if got := text(feed("video0", 4)); got != "0 kbit/s" {
		t.Fatalf("video0's rate before ffmpeg starts: %q", got)
	}
	if url := text(`#destinations tr[data-name="0"] td:nth-child(3)`); url != "ws://"+relay.addr+"/in/lab1/front" {
		t.Fatalf("the destination's URL shows as %q: its query (a token) must not show", url)
	}

	cam := ffmpeg(t, "video", "http://"+stream.addr+"/ts/video0")
	mic := ffmpeg(t, "audio", "http://"+stream.addr+"/ts/audio0")
	waitText(10*time.Second, feed("video0", 2), is("up"), "video0 once ffmpeg runs")
	kbits := func(s string) int {
		n, err := strconv.Atoi(strings.TrimSuffix(s, " kbit/s"))
		if err != nil {
			return -1
		}
		return n
	}
	// The feeds send 500 and 64 kbit/s; the rate climbs to near that.
	waitText(15*time.Second, feed("video0", 4), func(s string) bool { return kbits(s) > 250 }, "video0's bit rate")
	waitText(15*time.Second, feed("audio0", 4), func(s string) bool { return kbits(s) > 30 }, "audio0's bit rate")
	waitText(15*time.Second, feed("video0", 3), is("video mpeg1video 320×240"), "video0's track")
	waitText(15*time.Second, feed("audio0", 3), is("audio mp2"), "audio0's track")
	waitText(10*time.Second, `#streams tr[data-name="front"] td.rate`, func(s string) bool { return kbits(s) > 250 }, "the stream's output rate")
	waitText(10*time.Second, `#streams tr[data-name="front"] td:nth-child(3)`, is("on"), "the stream's audio")
	if age := text(feed("video0", 5)); !strings.HasSuffix(age, " s ago") {
		t.Errorf("video0's last data: %q", age)
	}
	page.Screenshot("status-live")

	postRule(t, stream, "/api/streams", `{"stream":"front","feeds":["video0"]}`)
	waitText(10*time.Second, `#streams tr[data-name="front"] td:nth-child(3)`, is("muted"), "the stream after a mute")

	relay.kill()
	waitText(15*time.Second, dest, func(s string) bool { return strings.HasPrefix(s, "backing off") }, "the destination once the relay is gone")
	page.Screenshot("status-relay-gone")
	if !cam.Alive() || !mic.Alive() {
		t.Fatal("a feed died")
	}
}
