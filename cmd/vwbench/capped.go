package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/netcap"
	"github.com/vwlab/vw/internal/tslive"
)

// The capped-link benchmarks cap one link of the path at a share of the
// stream's rate and measure, at the capped side: how far behind live its
// pictures arrive, what share of the audio frames arrive, how many
// pictures a second get through, how long after the cap lifts it gets
// every picture again, and whether it kept its one connection. Real
// ffmpeg feeds through vw stream: shedding and skipping are about real
// keyframes.
//
//   - delay caps the uplink (vw stream → relay) and measures a viewer of
//     the relay against vw stream's own preview, where the stream is live;
//   - viewers caps one viewer's link (relay → viewer) and measures it
//     against another viewer of the same stream on a free link.

// cappedBench says where a capped-link benchmark puts the cap.
type cappedBench struct {
	name   string
	uplink bool   // the cap is on vw stream → relay; else on relay → one viewer
	header string // printed above the table; %v is how long the cap lasts
	link   string // the first column's title
}

var (
	delayBench = cappedBench{
		name: "delay", uplink: true, link: "link",
		header: "\nuplink capped for %v at a share of the stream's rate: vw stream → capped TCP proxy → vw relay → viewer,\n" +
			"real ffmpeg feeds (testsrc2 480x270 MPEG-1 600k, GOP 12, + MP2 64k), VW_MAX_DELAY=1s;\n" +
			"behind: a picture's arrival at the viewer less its arrival (same PTS) at vw stream's own preview\n\n",
	}
	viewersBench = cappedBench{
		name: "viewers", link: "viewer link",
		header: "\na viewer's link capped for %v at a share of the stream's rate: vw stream → vw relay → capped TCP proxy → viewer,\n" +
			"real ffmpeg feeds (testsrc2 480x270 MPEG-1 600k, GOP 12, + MP2 64k), VW_RELAY_MAX_DELAY=1s;\n" +
			"behind: a picture's arrival at the capped viewer less its arrival (same PTS) at a viewer on a free link\n\n",
	}
)

type cappedConfig struct {
	vw     string
	cap    time.Duration
	shares []float64
}

func runDelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runCapped(ctx, delayBench, args, stdout, stderr)
}

func runViewers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runCapped(ctx, viewersBench, args, stdout, stderr)
}

func runCapped(ctx context.Context, b cappedBench, args []string, stdout, stderr io.Writer) error {
	fs := newBenchFlags(b.name, stderr)
	var cfg cappedConfig
	var shares string
	fs.VW(&cfg.vw)
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
		fmt.Fprintf(stdout, "\n%s: skipped, no ffmpeg on PATH\n", b.name)
		return nil
	}
	fmt.Fprintf(stdout, b.header, cfg.cap)
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, b.link+"\tstream\tbehind p50\tp99\tmax\taudio\tpictures/s\tback to whole\tconnection")
	for _, share := range cfg.shares {
		if err := cappedOnce(ctx, b, cfg, share, tw); err != nil {
			return err
		}
	}
	return tw.Flush()
}

func cappedOnce(ctx context.Context, b cappedBench, cfg cappedConfig, share float64, tw io.Writer) error {
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
	if _, err := r.post("/api/streams", `{"stream":"live","feeds":["cam","mic"]}`); err != nil {
		return err
	}
	measured, live, err := watchCapped(b, r, link)
	if err != nil {
		return err
	}
	defer measured.stop()
	defer live.stop()
	to, capped := r.relay.addr, link.Down
	if b.uplink {
		to, capped = link.Addr(), link.Up
	}
	if _, err := r.post("/api/destinations", `{"stream":"live","destination":"ws://`+to+`/in/bench/live","id":"live"}`); err != nil {
		return err
	}
	for _, feed := range []string{"cam", "mic"} {
		stop, err := ffmpegFeed(ctx, feed, "http://"+r.stream.addr+"/ts/"+feed)
		if err != nil {
			return err
		}
		defer stop()
	}
	if !waitFor(ctx, 15*time.Second, func() bool { return len(measured.Video()) > 25 && len(measured.Audio()) > 25 }) {
		return fmt.Errorf("%s: no stream through the capped link", b.name)
	}
	if err := sleep(ctx, 4*time.Second); err != nil {
		return err
	}
	rate := measured.Rate(3 * time.Second)
	from, lifted := capped.CapFor(ctx, rate*share, cfg.cap, nil)
	if err := sleep(ctx, 5*time.Second); err != nil {
		return err
	}
	printCapped(tw, share, rate, measured, live, link, from, lifted)
	return nil
}

// watchCapped opens the viewer measured behind the cap and the one that
// shows where live is.
func watchCapped(b cappedBench, r *rig, link *netcap.Proxy) (measured, live *viewerWatch, err error) {
	measuredAt, liveAt, liveRoute := link.Addr(), r.relay.addr, "/out/bench/live"
	if b.uplink {
		// vw stream's own preview of the stream is where it is live.
		measuredAt, liveAt, liveRoute = r.relay.addr, r.stream.addr, "/ws/live"
	}
	if live, err = watchViewer(liveAt, liveRoute); err != nil {
		return nil, nil, err
	}
	if measured, err = watchViewer(measuredAt, "/out/bench/live"); err != nil {
		live.stop()
		return nil, nil, err
	}
	return measured, live, nil
}

func printCapped(tw io.Writer, share, rate float64, measured, live *viewerWatch, link *netcap.Proxy, capped, lifted time.Time) {
	video := measured.Video()
	during := tslive.Arrived(video, capped, lifted)
	var behind []time.Duration
	for _, p := range tslive.Against(during, live.Video()) {
		behind = append(behind, p.Behind())
	}
	audio := tslive.Delivered(measured.Audio(), live.Audio(), capped, lifted)
	back := "not within 5 s"
	if at, ok := wholeFrom(tslive.Against(tslive.Arrived(video, lifted, time.Now()), live.Video())); ok {
		back = ms(at.Sub(lifted))
	}
	conn := "kept"
	if measured.closed() || link.Accepted() != 1 {
		conn = fmt.Sprintf("lost (%d connections)", link.Accepted())
	}
	fmt.Fprintf(tw, "%.0f%%\t%.0f kbit/s\t%s\t%s\t%s\t%.1f%%\t%.1f of %.0f\t%s\t%s\n",
		share*100, rate*8/1000, ms(pct(behind, 50)), ms(pct(behind, 99)), ms(pct(behind, 100)), audio*100,
		float64(len(during))/lifted.Sub(capped).Seconds(), float64(time.Second)/float64(tslive.Step(video)), back, conn)
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

// viewerWatch is a viewer of a route measured by a tslive meter.
type viewerWatch struct {
	*tslive.Meter
	conn *websocket.Conn
	done chan struct{}
}

// watchViewer connects to a route and measures what arrives.
func watchViewer(addr, route string) (*viewerWatch, error) {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+route, nil)
	if err != nil {
		return nil, err
	}
	w := &viewerWatch{Meter: tslive.New(false), conn: c, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			mt, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if mt == websocket.BinaryMessage {
				w.Add(b, time.Now())
			}
		}
	}()
	return w, nil
}

// closed reports whether the connection has ended.
func (w *viewerWatch) closed() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

func (w *viewerWatch) stop() {
	_ = w.conn.Close()
	<-w.done
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
