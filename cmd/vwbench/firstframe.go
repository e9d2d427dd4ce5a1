package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vwlab/vw/crossbar"
)

// The first-frame benchmark is what a viewer of a lab camera with a long
// GOP (ffmpeg -g 100 at 25 fps: a keyframe every 4 s) waits for: real
// ffmpeg feeds into vw stream, pushed to vw relay, each a process, and the
// player page opened in headless Chromium again and again at random
// moments, through the relay and on vw stream's own preview.

type firstFrameConfig struct {
	vw, ffmpeg, chromium string // paths of the programs
	loads                int
	gop                  int // frames, at 25 fps
	settle               time.Duration
	h264Loads            int
}

func runFirstFrame(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFirstFrame(args, stderr)
	if err != nil {
		return err
	}
	rg, err := startFirstFrameRig(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer rg.close()
	b, err := startChromium(ctx, cfg.chromium)
	if err != nil {
		return err
	}
	defer b.close()
	// The first load of each waits for the stream to flow and for a keyframe.
	for _, name := range []string{"front", "h264"} {
		if _, err := b.load("http://"+rg.relay.addr+"/play/lab1/"+name, 20*time.Second, cfg.settle); err != nil {
			return fmt.Errorf("warming up %s: %w", name, err)
		}
	}
	fmt.Fprintf(stdout, "\nfirst picture: ffmpeg camera (GOP %d frames at 25 fps = %.1f s) → vw stream → vw relay → Chromium, %d loads (MPEG-1) and %d (H.264) at random moments\n\n",
		cfg.gop, float64(cfg.gop)/25, cfg.loads, cfg.h264Loads)
	return measureFirstFrame(ctx, cfg, rg, b, stdout)
}

func parseFirstFrame(args []string, stderr io.Writer) (firstFrameConfig, error) {
	fs := newBenchFlags("firstframe", stderr)
	var cfg firstFrameConfig
	fs.VW(&cfg.vw)
	fs.IntVar(&cfg.loads, "loads", 10, "page loads per player of the MPEG-1 stream")
	fs.IntVar(&cfg.h264Loads, "h264-loads", 5, "page loads per player of the H.264 stream")
	fs.IntVar(&cfg.gop, "gop", 100, "the camera's GOP in frames (25 fps)")
	fs.DurationVar(&cfg.settle, "settle", 3*time.Second, "when after the page's start to read how far behind live it is")
	fs.Short("loads", "3")
	fs.Short("h264-loads", "2")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var err error
	if cfg.ffmpeg, err = exec.LookPath("ffmpeg"); err != nil {
		return cfg, fmt.Errorf("firstframe needs ffmpeg: %w", err)
	}
	if cfg.chromium, err = exec.LookPath("chromium"); err != nil {
		return cfg, fmt.Errorf("firstframe needs chromium: %w", err)
	}
	return cfg, nil
}

// firstFrameRig is vw stream fed by two cameras at the same GOP, MPEG-1/MP2
// into "front" and H.264/AAC (the README's encoder settings) into "h264",
// both sent to a relay with the keyframe cache and to one without.
type firstFrameRig struct {
	relay, bare, stream *vwProc
	feeds               []*exec.Cmd
	stopFeeds           context.CancelFunc
}

func startFirstFrameRig(ctx context.Context, cfg firstFrameConfig, stderr io.Writer) (_ *firstFrameRig, err error) {
	fctx, stopFeeds := context.WithCancel(ctx)
	rg := &firstFrameRig{stopFeeds: stopFeeds}
	defer func() {
		if err != nil {
			rg.close()
		}
	}()
	if rg.relay, err = startVW(ctx, cfg.vw, "", "relay"); err != nil {
		return nil, err
	}
	// The reference: a relay without the cache, as vw was before it.
	if rg.bare, err = startVW(ctx, cfg.vw, "", "relay", "VW_RELAY_CACHE_BYTES=0"); err != nil {
		return nil, err
	}
	if rg.stream, err = startVW(ctx, cfg.vw, "", "stream", "VW_STATE=off"); err != nil {
		return nil, err
	}
	gop := fmt.Sprint(cfg.gop)
	for _, f := range []struct {
		name, kind string
		h264       bool
	}{{"video0", "video", false}, {"audio0", "audio", false}, {"video1", "video", true}, {"audio1", "audio", true}} {
		cmd := exec.CommandContext(fctx, cfg.ffmpeg, cameraArgs(f.kind, gop, "http://"+rg.stream.addr+"/ts/"+f.name, f.h264)...)
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		rg.feeds = append(rg.feeds, cmd)
	}
	r := &rig{relay: rg.relay, stream: rg.stream}
	for _, rule := range []string{`{"stream":"front","feeds":["video0","audio0"]}`, `{"stream":"h264","feeds":["video1","audio1"]}`} {
		if _, err := r.post("/api/streams", rule); err != nil {
			return nil, err
		}
	}
	for id, to := range []*vwProc{rg.relay, rg.bare} {
		for _, name := range []string{"front", "h264"} {
			if _, err := r.post("/api/destinations", fmt.Sprintf(`{"stream":"%s","destination":"ws://%s/in/lab1/%s","id":"%s%d"}`, name, to.addr, name, name, id)); err != nil {
				return nil, err
			}
		}
	}
	return rg, nil
}

func (rg *firstFrameRig) close() {
	rg.stopFeeds()
	for _, cmd := range rg.feeds {
		_ = cmd.Wait()
	}
	for _, p := range []*vwProc{rg.stream, rg.bare, rg.relay} {
		if p != nil {
			p.stop()
		}
	}
}

// measureFirstFrame loads each player page cfg.loads times (MPEG-1) and
// cfg.h264Loads times (H.264) through each way in, and prints the table.
func measureFirstFrame(ctx context.Context, cfg firstFrameConfig, rg *firstFrameRig, b *chromium, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tMPEG-1 median\tworst\tH.264 median\tworst\tnotes")
	mem := sampleCache(ctx, rg.relay.addr, "/out/lab1/front")
	memH264 := sampleCache(ctx, rg.relay.addr, "/out/lab1/h264")
	const target = "target median ≤ 300 ms, worst ≤ 500 ms"
	for _, p := range []struct{ name, page, first, behind string }{
		{"via the relay", "http://" + rg.relay.addr + "/play/lab1/", target, "target ≤ 200 ms"},
		{"on vw stream's preview", "http://" + rg.stream.addr + "/play/", target, "target ≤ 200 ms"},
		{"via a relay without the cache", "http://" + rg.bare.addr + "/play/lab1/",
			"reference (VW_RELAY_CACHE_BYTES=0): waits for the next keyframe", "reference"},
	} {
		mp, err := b.loads(ctx, p.page+"front", "mpeg1", cfg.loads, cfg.settle)
		if err != nil {
			return fmt.Errorf("MPEG-1 %s: %w", p.name, err)
		}
		h, err := b.loads(ctx, p.page+"h264", "h264", cfg.h264Loads, cfg.settle)
		if err != nil {
			return fmt.Errorf("H.264 %s: %w", p.name, err)
		}
		fmt.Fprintf(tw, "first picture after page load, %s\t%.0f ms\t%.0f ms\t%.0f ms\t%.0f ms\t%s\n", p.name,
			median(mp.first), slices.Max(mp.first), median(h.first), slices.Max(h.first), p.first)
		fmt.Fprintf(tw, "behind live %v after page load, %s\t%.0f ms\t%.0f ms\t%.0f ms\t%.0f ms\t%s\n", cfg.settle, p.name,
			median(mp.behind), slices.Max(mp.behind), median(h.behind), slices.Max(h.behind), p.behind)
	}
	peak, rate := mem()
	peakH, rateH := memH264()
	gopSecs := float64(cfg.gop) / 25
	gopBytes, gopBytesH := rate/8*gopSecs, rateH/8*gopSecs
	fmt.Fprintf(tw, "relay memory per topic with the keyframe cache\t\t%s\t\t%s\tthe GOP: MPEG-1 %s (%.0f kbit/s × %.1f s), so %.2f×; H.264 %s (%.0f kbit/s), so %.2f× (target ≤ 1.5×)\n",
		kib(float64(peak)), kib(float64(peakH)), kib(gopBytes), rate/1e3, gopSecs, float64(peak)/gopBytes,
		kib(gopBytesH), rateH/1e3, float64(peakH)/gopBytesH)
	return tw.Flush()
}

// cameraArgs are the README's camera and microphone feeds with lavfi test
// sources, the camera at a GOP of gop frames: MPEG-1 and MP2, or with h264
// the README's H.264 (libx264) and AAC ones.
func cameraArgs(kind, gop, url string, h264 bool) []string {
	in := []string{"-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
		"-c:v", "mpeg1video", "-b:v", "1000k", "-bf", "0", "-g", gop}
	switch {
	case kind == "audio" && h264:
		in = []string{"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-c:a", "aac", "-b:a", "64k", "-ar", "48000"}
	case kind == "audio":
		in = []string{"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
			"-c:a", "mp2", "-b:a", "64k", "-ar", "44100"}
	case h264:
		in = []string{"-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
			"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-b:v", "500k", "-maxrate", "500k", "-bufsize", "500k",
			"-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p"}
	}
	return append(append([]string{"-v", "error", "-nostdin"}, in...), "-f", "mpegts", "-muxdelay", "0.001", url)
}

func kib(n float64) string { return fmt.Sprintf("%.0f KiB", n/1024) }

// sampleCache polls the relay's stats for a topic until the returned
// function is called, which gives the most the topic's keyframe cache held
// and the topic's mean rate in bits per second.
func sampleCache(ctx context.Context, addr, topic string) func() (peak uint64, rate float64) {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var peak, firstBytes, lastBytes uint64
	var firstAt, lastAt time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if t, ok := topicStats(addr, topic); ok {
				now := time.Now()
				mu.Lock()
				peak = max(peak, t.CacheBytes)
				if firstAt.IsZero() {
					firstAt, firstBytes = now, t.BytesIn
				}
				lastAt, lastBytes = now, t.BytesIn
				mu.Unlock()
			}
			_ = sleep(ctx, 100*time.Millisecond)
		}
	}()
	return func() (uint64, float64) {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		secs := lastAt.Sub(firstAt).Seconds()
		if secs <= 0 {
			return peak, 0
		}
		return peak, float64(lastBytes-firstBytes) * 8 / secs
	}
}

func topicStats(addr, topic string) (crossbar.TopicReport, bool) {
	resp, err := http.Get("http://" + addr + "/stats?format=json")
	if err != nil {
		return crossbar.TopicReport{}, false
	}
	defer resp.Body.Close()
	var st crossbar.Stats
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return crossbar.TopicReport{}, false
	}
	for _, t := range st.Topics {
		if t.Name == topic {
			return t, true
		}
	}
	return crossbar.TopicReport{}, false
}

// chromium is a headless Chromium run the way the tests run it.
type chromium struct {
	ctx    context.Context
	cancel func()
	dir    string
}

func startChromium(ctx context.Context, exe string) (*chromium, error) {
	dir, err := os.MkdirTemp("", "vwbench-chromium-")
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancel := chromedp.NewContext(allocCtx)
	c := &chromium{ctx: bctx, dir: dir, cancel: func() {
		cancel()
		cancelAlloc()
		os.RemoveAll(dir)
	}}
	if err := chromedp.Do(bctx); err != nil {
		c.close()
		return nil, fmt.Errorf("starting chromium: %w", err)
	}
	return c, nil
}

func (c *chromium) close() { c.cancel() }

// pageLoad is what one load of the player showed.
type pageLoad struct {
	Now          float64 `json:"now"`
	FirstFrameMs float64 `json:"firstFrameMs"`
	BehindMs     float64 `json:"behindMs"`
	Frames       int     `json:"frames"`
	Codec        string  `json:"codec"`
}

// loadFigures are the player's figures over several loads of one page.
type loadFigures struct{ first, behind []float64 }

// loads opens url n times, each at a random moment, and checks that the
// page played the stream with the player for codec.
func (c *chromium) loads(ctx context.Context, url, codec string, n int, settle time.Duration) (loadFigures, error) {
	var f loadFigures
	for range max(n, 1) {
		if err := sleep(ctx, time.Duration(time.Now().UnixNano()%int64(time.Second))); err != nil {
			return f, err
		}
		l, err := c.load(url, 10*time.Second, settle)
		if err != nil {
			return f, err
		}
		if l.Codec != codec {
			return f, fmt.Errorf("%s played with the %q player, want %q", url, l.Codec, codec)
		}
		f.first = append(f.first, l.FirstFrameMs)
		f.behind = append(f.behind, l.BehindMs)
	}
	return f, nil
}

// load opens url in a new tab and returns the player's figures at settle
// after the page's start, by the page's own clock.
func (c *chromium) load(url string, timeout, settle time.Duration) (pageLoad, error) {
	ctx, cancel := chromedp.NewContext(c.ctx)
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, timeout+settle)
	defer stop()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return pageLoad{}, err
	}
	const expr = `(() => { const v = window.vwPlayer || {}; return {now: performance.now(),
		firstFrameMs: v.firstFrameMs || 0, behindMs: v.behindMs || 0, frames: v.frames || 0, codec: v.codec || ""}; })()`
	for {
		l, err := chromedp.Run(ctx, chromedp.Evaluate[pageLoad](expr))
		if err != nil {
			return pageLoad{}, err
		}
		if l.Now >= float64(settle.Milliseconds()) && l.Frames > 0 {
			return l, nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return pageLoad{}, fmt.Errorf("%s: no picture within %v", url, timeout+settle)
			}
			return pageLoad{}, err
		}
	}
}
