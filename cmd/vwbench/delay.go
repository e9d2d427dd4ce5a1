package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/netcap"
	"github.com/vwlab/vw/internal/tslive"
)

// The delay benchmark caps the uplink (vw stream → relay, through a
// netcap proxy) at a share of the stream's rate and measures, at a viewer
// of the relay, how far behind live the pictures arrive, what share of the
// audio frames arrive, how many pictures a second get through, and how
// long after the cap lifts the stream is whole again. Real ffmpeg feeds:
// shedding is about real keyframes.

type delayConfig struct {
	vw     string
	cap    time.Duration
	shares []float64
}

func runDelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newBenchFlags("delay", stderr)
	var cfg delayConfig
	var shares string
	fs.StringVar(&cfg.vw, "vw", "bin/vw", "the vw binary to measure (make build)")
	fs.DurationVar(&cfg.cap, "cap", 10*time.Second, "how long the link stays capped")
	fs.StringVar(&shares, "shares", "0.75,0.5,0.25", "link rates to try, as shares of the stream's rate")
	fs.Short("cap", "4s")
	fs.Short("shares", "0.5")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if cfg.shares, err = parseShares(shares); err != nil {
		return err
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		fmt.Fprintln(stdout, "\nuplink delay: skipped, no ffmpeg on PATH")
		return nil
	}
	fmt.Fprintf(stdout, "\nuplink capped for %v at a share of the stream's rate: vw stream → capped TCP proxy → vw relay → viewer,\n"+
		"real ffmpeg feeds (testsrc2 480x270 MPEG-1 600k, GOP 12, + MP2 64k), VW_MAX_DELAY=1s;\n"+
		"behind: a picture's arrival at the viewer less its arrival (same PTS) at vw stream's own preview\n\n", cfg.cap)
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "link\tstream\tbehind p50\tp99\tmax\taudio\tpictures/s\tback to whole\tconnections")
	for _, share := range cfg.shares {
		if err := delayOnce(ctx, cfg, share, tw); err != nil {
			return err
		}
	}
	return tw.Flush()
}

func delayOnce(ctx context.Context, cfg delayConfig, share float64, tw io.Writer) error {
	r, err := startRig(ctx, pathConfig{vw: cfg.vw})
	if err != nil {
		return err
	}
	defer r.close()
	link, err := netcap.Listen(r.relay.addr)
	if err != nil {
		return err
	}
	defer link.Close()
	meter, stop, err := meterRoute(r.relay.addr, "/out/bench/live")
	if err != nil {
		return err
	}
	defer stop()
	if _, err := r.post("/api/streams", `{"stream":"live","feeds":["cam","mic"]}`); err != nil {
		return err
	}
	// vw stream's own preview of the stream is where it is live: each
	// picture's delay is counted from its arrival there.
	host, stopHost, err := meterRoute(r.stream.addr, "/ws/live")
	if err != nil {
		return err
	}
	defer stopHost()
	if _, err := r.post("/api/destinations", `{"stream":"live","destination":"ws://`+link.Addr()+`/in/bench/live","id":"live"}`); err != nil {
		return err
	}
	for _, feed := range []string{"cam", "mic"} {
		stop, err := ffmpegFeed(ctx, feed, "http://"+r.stream.addr+"/ts/"+feed)
		if err != nil {
			return err
		}
		defer stop()
	}
	if !waitFor(ctx, 15*time.Second, func() bool { return len(meter.Video()) > 25 && len(meter.Audio()) > 25 }) {
		return errors.New("delay: no stream at the relay")
	}
	if err := sleep(ctx, 4*time.Second); err != nil {
		return err
	}
	rate := meter.Rate(3 * time.Second)
	link.Up.SetRate(rate * share)
	capped := time.Now()
	if err := sleep(ctx, cfg.cap); err != nil {
		return err
	}
	link.Up.SetRate(0)
	lifted := time.Now()
	if err := sleep(ctx, 5*time.Second); err != nil {
		return err
	}
	video := meter.Video()
	during := tslive.Arrived(video, capped, lifted)
	var behind []time.Duration
	for _, p := range tslive.Against(during, host.Video()) {
		behind = append(behind, p.Behind())
	}
	audioShare := tslive.Delivered(meter.Audio(), host.Audio(), capped, lifted)
	back := "not within 5 s"
	if at, ok := wholeFrom(tslive.Against(tslive.Arrived(video, lifted, time.Now()), host.Video())); ok {
		back = ms(at.Sub(lifted))
	}
	fmt.Fprintf(tw, "%.0f%%\t%.0f kbit/s\t%s\t%s\t%s\t%.1f%%\t%.1f of %.0f\t%s\t%d\n",
		share*100, rate*8/1000, ms(pct(behind, 50)), ms(pct(behind, 99)), ms(pct(behind, 100)), audioShare*100,
		float64(len(during))/lifted.Sub(capped).Seconds(), float64(time.Second)/float64(tslive.Step(video)), back, link.Accepted())
	return nil
}

// wholeFrom finds when the pictures after a lift became whole again: the
// arrival of the first picture of a second's run (25 pictures) that all
// came in turn, each at most 200 ms behind live.
func wholeFrom(after []tslive.Pair) (time.Time, bool) {
	var frames []tslive.Frame
	for _, p := range after {
		frames = append(frames, p.Frame)
	}
	step := tslive.Step(frames)
	run := 0
	for i, f := range after {
		if f.Behind() <= 200*time.Millisecond && (run == 0 || f.PTS-after[i-1].PTS <= step*3/2) {
			run++
		} else {
			run = 0
		}
		if run == 25 {
			return after[i-24].At, true
		}
	}
	return time.Time{}, false
}

// meterRoute watches a relay route with a tslive meter.
func meterRoute(addr, route string) (*tslive.Meter, func(), error) {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+route, nil)
	if err != nil {
		return nil, nil, err
	}
	m := tslive.New(false)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			m.Add(b, time.Now())
		}
	}()
	return m, func() { c.Close(); <-done }, nil
}

// ffmpegFeed runs a real-time ffmpeg feed, cam (a camera's worth of
// moving picture) or mic, POSTing to url.
func ffmpegFeed(ctx context.Context, kind, url string) (func(), error) {
	args := []string{"-v", "error", "-nostdin", "-re"}
	if kind == "cam" {
		args = append(args, "-f", "lavfi", "-i", "testsrc2=size=480x270:rate=25", "-c:v", "mpeg1video", "-b:v", "600k", "-bf", "0")
	} else {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-c:a", "mp2", "-b:a", "64k", "-ar", "44100")
	}
	cmd := exec.CommandContext(ctx, "ffmpeg", append(args, "-f", "mpegts", "-muxdelay", "0.001", url)...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}, nil
}
