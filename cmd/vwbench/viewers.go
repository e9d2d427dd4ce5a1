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

// The viewers benchmark caps one viewer's link (vw relay → viewer, through
// a netcap proxy) at a share of the stream's rate while another viewer of
// the same stream watches on a free link, and measures at the capped one:
// how far behind the free viewer its pictures arrive, what share of the
// audio frames arrive, how many pictures a second get through, how long
// after the cap lifts it gets every picture again, and whether it kept its
// one connection. Real ffmpeg feeds through vw stream: skipping is about
// real keyframes.

type viewersConfig struct {
	vw     string
	cap    time.Duration
	shares []float64
}

func runViewers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newBenchFlags("viewers", stderr)
	var cfg viewersConfig
	var shares string
	fs.StringVar(&cfg.vw, "vw", "bin/vw", "the vw binary to measure (make build)")
	fs.DurationVar(&cfg.cap, "cap", 10*time.Second, "how long the viewer's link stays capped")
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
		fmt.Fprintln(stdout, "\nviewer delay: skipped, no ffmpeg on PATH")
		return nil
	}
	fmt.Fprintf(stdout, "\na viewer's link capped for %v at a share of the stream's rate: vw stream → vw relay → capped TCP proxy → viewer,\n"+
		"real ffmpeg feeds (testsrc2 480x270 MPEG-1 600k, GOP 12, + MP2 64k), VW_RELAY_MAX_DELAY=1s;\n"+
		"behind: a picture's arrival at the capped viewer less its arrival (same PTS) at a viewer on a free link\n\n", cfg.cap)
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "viewer link\tstream\tbehind p50\tp99\tmax\taudio\tpictures/s\tback to whole\tconnection")
	for _, share := range cfg.shares {
		if err := viewersOnce(ctx, cfg, share, tw); err != nil {
			return err
		}
	}
	return tw.Flush()
}

func viewersOnce(ctx context.Context, cfg viewersConfig, share float64, tw io.Writer) error {
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
	free, err := watchViewer(r.relay.addr, "/out/bench/live")
	if err != nil {
		return err
	}
	defer free.stop()
	slow, err := watchViewer(link.Addr(), "/out/bench/live")
	if err != nil {
		return err
	}
	defer slow.stop()
	if _, err := r.post("/api/streams", `{"stream":"live","feeds":["cam","mic"]}`); err != nil {
		return err
	}
	if _, err := r.post("/api/destinations", `{"stream":"live","destination":"ws://`+r.relay.addr+`/in/bench/live","id":"live"}`); err != nil {
		return err
	}
	for _, feed := range []string{"cam", "mic"} {
		stop, err := ffmpegFeed(ctx, feed, "http://"+r.stream.addr+"/ts/"+feed)
		if err != nil {
			return err
		}
		defer stop()
	}
	if !waitFor(ctx, 15*time.Second, func() bool { return len(slow.Video()) > 25 && len(slow.Audio()) > 25 }) {
		return errors.New("viewers: no stream through the capped link")
	}
	if err := sleep(ctx, 4*time.Second); err != nil {
		return err
	}
	rate := free.Rate(3 * time.Second)
	link.Down.SetRate(rate * share)
	capped := time.Now()
	if err := sleep(ctx, cfg.cap); err != nil {
		return err
	}
	link.Down.SetRate(0)
	lifted := time.Now()
	if err := sleep(ctx, 5*time.Second); err != nil {
		return err
	}
	video := slow.Video()
	during := tslive.Arrived(video, capped, lifted)
	var behind []time.Duration
	for _, p := range tslive.Against(during, free.Video()) {
		behind = append(behind, p.Behind())
	}
	audio := tslive.Delivered(slow.Audio(), free.Audio(), capped, lifted)
	back := "not within 5 s"
	if at, ok := wholeFrom(tslive.Against(tslive.Arrived(video, lifted, time.Now()), free.Video())); ok {
		back = ms(at.Sub(lifted))
	}
	conn := "kept"
	if slow.closed() || link.Accepted() != 1 {
		conn = fmt.Sprintf("lost (%d connections)", link.Accepted())
	}
	fmt.Fprintf(tw, "%.0f%%\t%.0f kbit/s\t%s\t%s\t%s\t%.1f%%\t%.1f of %.0f\t%s\t%s\n",
		share*100, rate*8/1000, ms(pct(behind, 50)), ms(pct(behind, 99)), ms(pct(behind, 100)), audio*100,
		float64(len(during))/lifted.Sub(capped).Seconds(), float64(time.Second)/float64(tslive.Step(video)), back, conn)
	return nil
}

// viewerWatch is a viewer of a relay route measured by a tslive meter.
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
