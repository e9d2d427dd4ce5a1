// Package browser owns driving a real headless Chromium from tests: starting
// Debian's chromium with the flags vw's pages need (audio without a click, no
// network chatter), opening pages in tabs, reading the player page's
// window.vwPlayer figures, waiting on them with a deadline, relaying the
// page's console to the test log, and saving screenshots as test artefacts.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vwlab/vw/internal/testutil"
)

// Browser is one headless Chromium process, stopped when the test ends.
type Browser struct {
	t   testing.TB
	ctx context.Context // the browser's first tab; children are new tabs
}

// Option changes how Start runs the browser.
type Option func(*options)

type options struct {
	blockAutoplay bool
}

// BlockAutoplay leaves Chromium's default autoplay policy in force: audio
// waits for a user gesture, as in a browser someone has just opened.
func BlockAutoplay() Option { return func(o *options) { o.blockAutoplay = true } }

// Start launches Chromium for the test, or skips the test where chromium is
// missing (fails in CI). The browser stops when the test ends.
func Start(t testing.TB, opt ...Option) *Browser {
	t.Helper()
	var o options
	for _, f := range opt {
		f(&o)
	}
	exe := testutil.NeedTool(t, "chromium")
	autoplay := "no-user-gesture-required"
	if o.blockAutoplay {
		autoplay = "document-user-activation-required"
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // Debian's chromium runs as root here
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		// jsmpeg's audio starts without a click, as the tests need.
		chromedp.Flag("autoplay-policy", autoplay),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the process; it must not carry a timeout, which
	// would end the browser with it.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting chromium: %v", err)
		}
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("chromium did not start within 30 s")
	}
	return &Browser{t: t, ctx: ctx}
}

// Page is one tab.
type Page struct {
	t      testing.TB
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open opens url in a new tab and waits for it to load. The page's console
// messages and errors go to the test log. The tab closes when the test ends.
func (b *Browser) Open(url string) *Page {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	p := &Page{t: b.t, ctx: ctx, cancel: cancel}
	b.t.Cleanup(p.Close)
	messages := chromedp.Console(ctx) // subscribes now, so nothing is missed
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for m, err := range messages {
			if err != nil {
				return
			}
			p.t.Logf("browser console: %s", m)
		}
	}()
	if err := p.do(30*time.Second, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("opening %s: %v", url, err)
	}
	return p
}

// Close closes the tab. It is idempotent.
func (p *Page) Close() {
	p.cancel()
	p.wg.Wait()
}

func (p *Page) do(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// Eval evaluates a JavaScript expression in the page and decodes its value
// (by JSON) into T.
func Eval[T any](p *Page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// Reload reloads the page, as a person pressing F5 would, and waits for it
// to load.
func (p *Page) Reload() error {
	return p.do(30*time.Second, chromedp.Reload())
}

// Click clicks, as a person would with the mouse, the first element that
// matches the CSS selector, once it is visible.
func (p *Page) Click(selector string) error {
	return p.do(10*time.Second, chromedp.Click(chromedp.CSS(selector)))
}

// Player is what the player page keeps in window.vwPlayer.
type Player struct {
	// State is the page's connection state: loading, no-library,
	// connecting, waiting, playing, stalled, reconnecting, needs-token,
	// unauthorized, forbidden or error.
	State string `json:"state"`
	// Frames and AudioFrames count decoded video and audio frames.
	Frames      int `json:"frames"`
	AudioFrames int `json:"audioFrames"`
	// Bytes counts bytes received; Connects counts websocket connections
	// opened.
	Bytes    int `json:"bytes"`
	Connects int `json:"connects"`
	// Audio is the state of the page's AudioContext ("running",
	// "suspended", "none").
	Audio string `json:"audio"`
	// Detail explains the state: why the connection closed, or the relay's
	// reason for a refusal.
	Detail string `json:"detail"`
	// Status is the HTTP status with which the relay's access point refused
	// the page (401, 403; states needs-token, unauthorized, forbidden), or 0.
	Status int `json:"status"`
	// Codec is the player's codec family: "mpeg1" (jsmpeg) or "h264"
	// (Media Source Extensions).
	Codec string `json:"codec"`
	// AudioLevel is the latest peak level of the sound played, 0 to 1
	// (the H.264 page).
	AudioLevel float64 `json:"audioLevel"`
	// BehindMs is how far the picture is behind the newest media received
	// (the jsmpeg page: the newest video, by PTS).
	BehindMs int `json:"behindMs"`
	// FirstFrameMs is the time from the page's start to its first decoded
	// picture (the jsmpeg page); 0 until then.
	FirstFrameMs int `json:"firstFrameMs"`
}

// playerExpr copies the figures out, so that only plain data crosses.
const playerExpr = `(() => { const v = window.vwPlayer; return v ? {state: v.state, frames: v.frames,
	audioFrames: v.audioFrames, bytes: v.bytes, connects: v.connects, audio: v.audio, detail: v.detail,
	status: v.status || 0, codec: v.codec || "", audioLevel: v.audioLevel || 0, behindMs: Math.round(v.behindMs || 0),
	firstFrameMs: Math.round(v.firstFrameMs || 0)} : null })()`

// ErrNoPlayer means the page has no window.vwPlayer (yet).
var ErrNoPlayer = errors.New("the page has no window.vwPlayer")

// Player reads window.vwPlayer.
func (p *Page) Player() (Player, error) {
	v, err := Eval[*Player](p, playerExpr)
	if err != nil {
		return Player{}, err
	}
	if v == nil {
		return Player{}, ErrNoPlayer
	}
	return *v, nil
}

// WaitPlayer polls window.vwPlayer until cond holds and returns the figures
// that satisfied it; after timeout it fails the test with what, and the last
// figures seen.
func (p *Page) WaitPlayer(timeout time.Duration, what string, cond func(Player) bool) Player {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last Player
	var lastErr error
	for {
		v, err := p.Player()
		if err == nil && cond(v) {
			return v
		}
		last, lastErr = v, err
		if time.Now().After(deadline) {
			p.Screenshot("timeout")
			p.t.Fatalf("after %v the player has not %s: last %+v (err %v)", timeout, what, last, lastErr)
		}
		<-tick.C
	}
}

// Screenshot saves a PNG of the page as a test artefact and returns its
// path, which it also logs. See ArtifactDir for where it goes.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	file := filepath.Join(ArtifactDir(p.t), fileName(p.t.Name()+"-"+name)+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.t.Errorf("saving screenshot: %v", err)
		return ""
	}
	p.t.Logf("screenshot %s: %s", name, file)
	return file
}

// ArtifactDir returns where tests put artefacts: $VW_ARTIFACTS if set
// (created if needed), else artifacts/ at the repository root if it exists,
// else a temporary directory of the test.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("VW_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("VW_ARTIFACTS: %v", err)
		}
		return d
	}
	if root, err := testutil.ModuleRoot(); err == nil {
		d := filepath.Join(root, "artifacts")
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return t.TempDir()
}

// fileName keeps the characters of s that are safe in a file name.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// String describes the figures for logs.
func (v Player) String() string {
	return fmt.Sprintf("%s: %s, %d video frames, %d audio frames (level %.3f), %d ms behind, %d bytes, %d connections, audio %s",
		v.State, v.Codec, v.Frames, v.AudioFrames, v.AudioLevel, v.BehindMs, v.Bytes, v.Connects, v.Audio)
}
