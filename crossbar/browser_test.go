package crossbar

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// publisher is a real ffmpeg (the README's camera and microphone feeds in
// one process, at real-time pace) whose output a Go websocket client sends
// to a relay's /in/ route as binary messages, as vw stream would.
type publisher struct {
	ff   *testutil.Proc
	done chan error
	once sync.Once
	err  error
}

func startPublisher(t *testing.T, url string) *publisher {
	t.Helper()
	return startPublisherWith(t, url, nil)
}

// startPublisherWith is startPublisher with handshake headers (a token).
func startPublisherWith(t *testing.T, url string, hdr http.Header) *publisher {
	t.Helper()
	return startPublisherCodec(t, url, hdr, mpeg1Codecs)
}

// mpeg1Codecs and h264Codecs choose the publisher's family: what jsmpeg
// plays, and what browsers decode through Media Source Extensions, each as
// the README's feeds.
var (
	mpeg1Codecs = testutil.Feed{Video: true, Audio: true}
	h264Codecs  = testutil.Feed{Video: true, Audio: true, H264: true}
)

// startPublisherCodec is startPublisherWith with the feeds' family.
func startPublisherCodec(t *testing.T, url string, hdr http.Header, feeds testutil.Feed) *publisher {
	t.Helper()
	testutil.NeedTool(t, "ffmpeg")
	ws, resp, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatalf("publisher dial %s: %v", url, err)
	}
	_ = resp.Body.Close()
	ff, out := testutil.StartFeedReading(t, feeds)
	p := &publisher{ff: ff, done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 32<<10)
		var err error
		for {
			var n int
			n, err = out.Read(buf)
			if n > 0 {
				_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if werr := ws.WriteMessage(websocket.BinaryMessage, buf[:n]); werr != nil {
					err = werr
					break
				}
			}
			if err != nil {
				break
			}
		}
		_ = ws.Close()
		if errors.Is(err, io.EOF) {
			err = nil // ffmpeg ended: stop says whether it was asked to
		}
		p.done <- err
	}()
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("publisher: %v", err)
		}
	})
	return p
}

// stop kills ffmpeg and closes the websocket, and returns what went wrong
// before that (ffmpeg ending by itself, or a failed send); it is
// idempotent.
func (p *publisher) stop() error {
	p.once.Do(func() {
		exited := !p.ff.Alive()
		p.ff.Kill()
		p.err = <-p.done
		if exited {
			p.err = errors.Join(p.err, fmt.Errorf("ffmpeg ended by itself: %v\n%s", p.ff.Err(), p.ff.Output()))
		}
	})
	return p.err
}

// swappable serves whichever relay is current, or 503 while there is none:
// a relay that goes away and comes back at the same address.
type swappable struct{ h atomic.Pointer[http.Handler] }

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "relay down", http.StatusServiceUnavailable)
}

func (s *swappable) set(h http.Handler) {
	if h == nil {
		s.h.Store(nil)
		return
	}
	s.h.Store(&h)
}

// restartable is a relay at a fixed address that a test takes down and
// brings back, as a viewer's page meets a relay that restarts.
type restartable struct {
	front swappable
	http  *httptest.Server
	ws    string  // ws://127.0.0.1:port
	cur   *Server // the relay up now, or the last one
}

func startRestartable(t *testing.T) *restartable {
	t.Helper()
	r := &restartable{}
	r.http = httptest.NewServer(&r.front)
	t.Cleanup(r.http.Close)
	r.ws = "ws" + strings.TrimPrefix(r.http.URL, "http")
	r.up(t)
	return r
}

// up puts a new relay behind the address.
func (r *restartable) up(t *testing.T) {
	r.cur = newServer(t, Config{}, testutil.Log(t))
	t.Cleanup(r.cur.Close)
	r.front.set(r.cur.Handler())
}

// down closes the relay; the address answers 503 until up.
func (r *restartable) down() {
	r.front.set(nil)
	r.cur.Close()
}

// TestPlayerInChromium plays a real ffmpeg stream through the relay in
// headless Chromium and checks what a viewer sees: video and audio decode,
// the page notices when the stream stops and recovers when it returns, and
// it reconnects by itself when the relay goes away and comes back.
func TestPlayerInChromium(t *testing.T) {
	testutil.NeedJSMpeg(t)
	testutil.NeedTool(t, "ffmpeg")
	b := browser.Start(t)

	relay := startRestartable(t)

	pub := startPublisher(t, relay.ws+"/in/lab1/cam")
	page := b.Open(relay.http.URL + "/play/lab1/cam")
	v := page.WaitPlayer(20*time.Second, "played 50 video frames with audio", func(v browser.Player) bool {
		return v.State == "playing" && v.Frames > 50 && v.AudioFrames > 0
	})
	t.Logf("playing: %v", v)
	shot := page.Screenshot("playing")
	audio := v.AudioFrames
	v = page.WaitPlayer(10*time.Second, "decoded more audio", func(v browser.Player) bool { return v.AudioFrames > audio+20 })
	if v.Audio != "running" {
		t.Errorf("the page's audio is %q, want running (autoplay allowed)", v.Audio)
	}

	// The index links to the live stream, and the stats page shows it with
	// its viewer.
	index := b.Open(relay.http.URL + "/")
	text, err := browser.Eval[string](index, `document.body.innerText`)
	if err != nil || !strings.Contains(text, "lab1/cam") {
		t.Errorf("the index page reads %q (%v), want the live stream lab1/cam", text, err)
	}
	if href, err := browser.Eval[string](index, `document.querySelector("a[href='/play/lab1/cam']").href`); err != nil || !strings.HasSuffix(href, "/play/lab1/cam") {
		t.Errorf("the index has no link to the player: %q %v", href, err)
	}
	index.Screenshot("index")
	stats := b.Open(relay.http.URL + "/stats")
	text, err = browser.Eval[string](stats, `document.body.innerText`)
	if err != nil || !strings.Contains(text, "/out/lab1/cam") || !strings.Contains(text, "viewer") {
		t.Errorf("the stats page reads %q (%v), want /out/lab1/cam and its viewer", text, err)
	}
	stats.Screenshot("stats")
	index.Close()
	stats.Close()

	// The publisher stops: the page stays connected and says the stream
	// has stopped; a new publisher brings the picture back.
	if err := pub.stop(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	v = page.WaitPlayer(10*time.Second, "noticed that the stream stopped", func(v browser.Player) bool { return v.State == "stalled" })
	frames, connects := v.Frames, v.Connects
	pub = startPublisher(t, relay.ws+"/in/lab1/cam")
	v = page.WaitPlayer(20*time.Second, "recovered when the stream returned", func(v browser.Player) bool {
		return v.State == "playing" && v.Frames > frames+50
	})
	if v.Connects != connects {
		t.Errorf("the page reconnected (%d connections, was %d) though its connection stayed up", v.Connects, connects)
	}

	// The relay goes away: the page shows it is reconnecting, and plays
	// again once a relay and the stream are back.
	if err := pub.stop(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	relay.down()
	v = page.WaitPlayer(10*time.Second, "shown that it is reconnecting", func(v browser.Player) bool { return v.State == "reconnecting" })
	frames = v.Frames
	relay.up(t)
	startPublisher(t, relay.ws+"/in/lab1/cam")
	v = page.WaitPlayer(30*time.Second, "played again after the relay came back", func(v browser.Player) bool {
		return v.State == "playing" && v.Connects > connects && v.Frames > frames+50
	})
	t.Logf("after the relay returned: %v", v)
	page.Screenshot("recovered")
	t.Logf("look at %s: it should show ffmpeg's test pattern", shot)
}

// TestUnmuteHintInChromium opens a player in a browser that blocks audio
// until a gesture: the page offers to unmute, and a click turns the sound on.
func TestUnmuteHintInChromium(t *testing.T) {
	testutil.NeedJSMpeg(t)
	testutil.NeedTool(t, "ffmpeg")
	b := browser.Start(t, browser.BlockAutoplay())
	r := startRelay(t, Config{})
	startPublisher(t, r.ws+"/in/cam")
	page := b.Open(r.http.URL + "/play/cam")
	page.WaitPlayer(20*time.Second, "decoded audio with the sound blocked", func(v browser.Player) bool {
		return v.AudioFrames > 0 && v.Audio == "suspended"
	})
	clickUnmute(t, page)
	page.WaitPlayer(5*time.Second, "turned the sound on after a click", func(v browser.Player) bool { return v.Audio == "running" })
	testutil.Eventually(t, 5*time.Second, func() bool { return !unmuteShown(page) }, "the unmute hint stays after the sound is on")
}

// unmuteShown reports whether the page shows its unmute hint.
func unmuteShown(page *browser.Page) bool {
	hidden, err := browser.Eval[bool](page, `document.getElementById("unmute").hidden`)
	return err == nil && !hidden
}

// clickUnmute waits for the unmute hint of a page whose sound the browser
// blocks, and clicks it.
func clickUnmute(t *testing.T, page *browser.Page) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() bool { return unmuteShown(page) }, "the unmute hint is not shown while the sound is blocked")
	page.Screenshot("muted")
	if err := page.Click("#unmute"); err != nil {
		t.Fatal(err)
	}
}

// requestLog wraps a handler and records every request line it sees, and
// the Referer, as a server's access log would.
type requestLog struct {
	h     http.Handler
	mu    sync.Mutex
	lines []string
}

func (l *requestLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.lines = append(l.lines, r.Method+" "+r.RequestURI)
	if ref := r.Header.Get("Referer"); ref != "" {
		l.lines = append(l.lines, "Referer: "+ref)
	}
	l.mu.Unlock()
	l.h.ServeHTTP(w, r)
}

func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// TestPrivateStreamInChromium plays a private stream as a viewer given a
// link would: a real ffmpeg stream published with a write token to a relay
// with a secret, played in headless Chromium from /play/{x}#token=<read
// token>. The page trades the token at the access point for a one-time
// code, so that no URL the server sees carries a token; it takes the token
// out of the address bar; without a token, with a token for another lab and
// after a revocation it says why it cannot play.
func TestPrivateStreamInChromium(t *testing.T) {
	testutil.NeedJSMpeg(t)
	testutil.NeedTool(t, "ffmpeg")
	srv, reqs, tokens := privateRelay(t)
	startPublisherWith(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/in/lab1/cam", bearer(tokens["write"]))
	b := browser.Start(t)
	page := b.Open(srv.URL + "/play/lab1/cam#token=" + tokens["read"])
	v := page.WaitPlayer(20*time.Second, "played the private stream", func(v browser.Player) bool {
		return v.State == "playing" && v.Frames > 50
	})
	t.Logf("playing: %v", v)
	shot := page.Screenshot("private")
	if href, err := browser.Eval[string](page, `location.href`); err != nil || href != srv.URL+"/play/lab1/cam" {
		t.Errorf("the address bar reads %q (%v), want %s: the token must leave it", href, err, srv.URL+"/play/lab1/cam")
	}
	// A reload plays again: the tab keeps the token, not the address bar.
	if err := page.Reload(); err != nil {
		t.Fatal(err)
	}
	page.WaitPlayer(20*time.Second, "played again after a reload", func(v browser.Player) bool {
		return v.State == "playing" && v.Frames > 10
	})
	checkPrivateRefusals(t, b, srv.URL, tokens)

	// Revoked: the relay closes the playing page's connection, and the
	// page's next code request is refused with the reason.
	deny := testutil.Do(t, testutil.Req{Method: http.MethodPost, URL: srv.URL + auth.DenyPath, Body: `{"token":"` + tokens["read"] + `"}`, Token: tokens["admin"]})
	if deny.Status != http.StatusOK {
		t.Fatalf("deny: %d %s", deny.Status, deny.Body)
	}
	page.WaitPlayer(10*time.Second, "said that its token was revoked", func(v browser.Player) bool {
		return v.State == "unauthorized" && v.Status == http.StatusUnauthorized && strings.Contains(v.Detail, "denied")
	})
	page.Screenshot("revoked")
	checkNoTokenInURLs(t, reqs.all(), tokens)
	t.Logf("look at %s: it should show ffmpeg's test pattern", shot)
}

// privateRelay serves a relay with a secret, logging the requests it sees,
// until the test ends; it returns tokens to write lab1, read lab1/cam, read
// lab2 and administer it.
func privateRelay(t *testing.T) (*httptest.Server, *requestLog, map[string]string) {
	a, err := auth.New(auth.Config{Secret: secret}, testutil.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Config{Auth: a}, testutil.Log(t))
	t.Cleanup(s.Close)
	reqs := &requestLog{h: s.Handler()}
	srv := httptest.NewServer(reqs)
	t.Cleanup(srv.Close)
	return srv, reqs, map[string]string{
		"write": mintWith(t, a, "lab1/", "write", time.Hour),
		"read":  mintWith(t, a, "lab1/cam", "read", time.Hour),
		"lab2":  mintWith(t, a, "lab2/", "read", time.Hour),
		"admin": mintWith(t, a, "/", "admin", time.Hour),
	}
}

// checkPrivateRefusals: without a token the page says the stream needs
// one; with a token for another lab it is refused with the relay's reason.
func checkPrivateRefusals(t *testing.T, b *browser.Browser, base string, tokens map[string]string) {
	bare := b.Open(base + "/play/lab1/cam")
	bare.WaitPlayer(10*time.Second, "said that the stream needs a token", func(v browser.Player) bool {
		return v.State == "needs-token" && v.Status == http.StatusUnauthorized
	})
	if text, err := browser.Eval[string](bare, `document.body.innerText`); err != nil || !strings.Contains(text, "needs a token") ||
		!strings.Contains(text, "#token=") {
		t.Errorf("the page without a token reads %q (%v)", text, err)
	}
	bare.Screenshot("needs-token")
	bare.Close()

	other := b.Open(base + "/play/lab1/cam#token=" + tokens["lab2"])
	other.WaitPlayer(10*time.Second, "said that the token does not cover the stream", func(v browser.Player) bool {
		return v.State == "forbidden" && v.Status == http.StatusForbidden && strings.Contains(v.Detail, "does not cover")
	})
	other.Close()
}

// checkNoTokenInURLs: of the request lines (and Referers) the server saw,
// none carries a token, and the player's websocket URLs carry a code and
// nothing else.
func checkNoTokenInURLs(t *testing.T, lines []string, tokens map[string]string) {
	codes := 0
	for _, line := range lines {
		for name, tok := range tokens {
			sig := tok[strings.LastIndex(tok, ".")+1:]
			if strings.Contains(line, tok) || strings.Contains(line, sig) {
				t.Errorf("the server saw the %s token in %q", name, line)
			}
		}
		uri, ok := strings.CutPrefix(line, "GET /out/")
		if !ok {
			continue
		}
		u, err := url.Parse("/out/" + uri)
		if err != nil || u.Path != "/out/lab1/cam" || len(u.Query()) != 1 || u.Query().Get("code") == "" {
			t.Errorf("the player connected with %q, want /out/lab1/cam?code=…", line)
			continue
		}
		codes++
	}
	if codes == 0 {
		t.Errorf("the player never connected with a code; the server saw %q", lines)
	}
}
