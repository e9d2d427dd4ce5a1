package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/ts"
)

// fanoutConfig is what fanout measures: every load at every viewer count,
// on every server.
type fanoutConfig struct {
	loads    []load
	viewers  []int
	duration time.Duration
	warmup   time.Duration
	queue    int
	servers  []string
	repeat   int
	exe      string
	profile  string
}

func parseFanout(args []string, getenv func(string) string, stderr io.Writer) (fanoutConfig, error) {
	fs := newBenchFlags("fanout", stderr)
	var cfg fanoutConfig
	var loads, viewers, servers string
	var rate float64
	var msg int
	fs.StringVar(&loads, "loads", "stream,fixed", `what the publisher sends: "stream" (vw stream's messages for a 1 Mbit/s MPEG-1 + MP2 stream, as measured), "fixed" (-msg bytes at -rate)`)
	fs.StringVar(&viewers, "viewers", "200,1000", "websocket viewers of the stream, comma-separated counts")
	fs.Float64Var(&rate, "rate", 4e6, "fixed load: bits per second")
	fs.IntVar(&msg, "msg", 87*ts.PacketSize, "fixed load: message size in bytes (rounded to whole 188-byte packets)")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time per server")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "time before measuring, per server")
	fs.IntVar(&cfg.queue, "queue", crossbar.DefaultQueue, "relay: each viewer's queue, in messages")
	fs.StringVar(&servers, "servers", "floor,relay", "servers to measure, in order")
	fs.IntVar(&cfg.repeat, "repeat", 1, "rounds over the servers: loopback figures are noisy, compare medians")
	fs.StringVar(&cfg.profile, "cpuprofile", "", "write each server's CPU profile to this prefix + load, viewers, server + .pprof")
	fs.Short("viewers", "200")
	fs.Short("duration", "2s")
	fs.Short("warmup", "500ms")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if rate <= 0 || cfg.duration <= 0 || cfg.repeat < 1 {
		return cfg, errors.New("fanout: -rate, -duration and -repeat must be positive")
	}
	for _, v := range strings.Split(viewers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("fanout: -viewers %q: want positive counts", viewers)
		}
		cfg.viewers = append(cfg.viewers, n)
	}
	for _, l := range strings.Split(loads, ",") {
		switch strings.TrimSpace(l) {
		case "stream":
			cfg.loads = append(cfg.loads, streamLoad())
		case "fixed":
			cfg.loads = append(cfg.loads, fixedLoad(msg, rate))
		default:
			return cfg, fmt.Errorf("fanout: -loads: no load %q", l)
		}
	}
	cfg.servers = strings.Split(servers, ",")
	cfg.exe = getenv("VWBENCH_EXE")
	if cfg.exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("finding vwbench to run the servers: %w", err)
		}
		cfg.exe = exe
	}
	return cfg, nil
}

func runFanout(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFanout(args, getenv, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fan-out: one stream to many websocket viewers on loopback, each server a child process; %v measured after %v warm-up per server\n", cfg.duration, cfg.warmup)
	for _, l := range cfg.loads {
		fmt.Fprintf(stdout, "  %s: %s\n", l.name, l.about)
	}
	fmt.Fprintln(stdout, "  CPU per GB: the server's user + system time over the payload bytes all viewers received in those seconds")
	fmt.Fprintln(stdout, "  latency: for every message sent in those seconds at every viewer, from the publisher's write to the viewer reading its first bytes; lost: not there 2 s after the last")
	fmt.Fprintln(stdout, "  floor: one loop writing one PreparedMessage to every viewer in turn (no isolation); relay: crossbar, as vw relay runs it")
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "load\tviewers\tserver\tdelivered\tCPU\tCPU per GB\tvs %s\tp50 latency\tp99 latency\tmax latency\tlost msgs\tdropped viewers\t\n", cfg.servers[0])
	var medians []string
	for _, l := range cfg.loads {
		for _, n := range cfg.viewers {
			m, err := fanoutCase(ctx, cfg, l, n, tw, stderr)
			if err != nil {
				return err
			}
			medians = append(medians, m)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cfg.repeat > 1 {
		fmt.Fprintf(stdout, "\nmedians of %d rounds, CPU per GB against the first server's:\n", cfg.repeat)
		for _, m := range medians {
			fmt.Fprintln(stdout, "  "+m)
		}
	}
	return nil
}

// fanoutCase measures one load at one viewer count on every server, round
// after round, writes a row each, and returns the medians as a line.
func fanoutCase(ctx context.Context, cfg fanoutConfig, l load, viewers int, tw io.Writer, stderr io.Writer) (string, error) {
	perGB := map[string][]float64{}
	for round := range cfg.repeat {
		var base float64
		for i, kind := range cfg.servers {
			res, err := measureFanout(ctx, kind, cfg, l, viewers, stderr)
			if err != nil {
				return "", fmt.Errorf("%s, %d viewers, %s: %w", l.name, viewers, kind, err)
			}
			perGB[kind] = append(perGB[kind], res.cpuPerGB())
			name := kind
			if cfg.repeat > 1 {
				name = fmt.Sprintf("%s #%d", kind, round+1)
			}
			vs := "—"
			if i == 0 {
				base = res.cpuPerGB()
			} else if base > 0 {
				vs = fmt.Sprintf("%.2fx", res.cpuPerGB()/base)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f MB\t%.3f s\t%.3f s/GB\t%s\t%s\t%s\t%s\t%d\t%d\t\n", l.name, viewers, name,
				float64(res.delivered)/1e6, res.cpu.Seconds(), res.cpuPerGB(), vs,
				ms(res.percentile(50)), ms(res.percentile(99)), ms(res.percentile(100)), res.lost, res.dropped)
		}
	}
	line := fmt.Sprintf("%s, %d viewers:", l.name, viewers)
	base := median(perGB[cfg.servers[0]])
	for _, kind := range cfg.servers {
		m := median(perGB[kind])
		line += fmt.Sprintf(" %s %.3f s/GB", kind, m)
		if kind != cfg.servers[0] && base > 0 {
			line += fmt.Sprintf(" (%.2fx)", m/base)
		}
	}
	return line, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + " ms" }

// fanoutResult is one server's figures over the measured window.
type fanoutResult struct {
	delivered uint64        // payload bytes received by viewers
	cpu       time.Duration // the server's user+system CPU
	latencies []time.Duration
	lost      uint64 // messages of the window some viewer never got
	dropped   int    // viewers disconnected by the server
}

func (r fanoutResult) cpuPerGB() float64 {
	if r.delivered == 0 {
		return 0
	}
	return r.cpu.Seconds() / (float64(r.delivered) / 1e9)
}

// percentile returns the p-th percentile latency (100: the maximum).
func (r fanoutResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies)-1) * p / 100)
	return r.latencies[i]
}

// measureFanout runs one server as a child process, connects the viewers and
// a publisher sending the load, and measures.
func measureFanout(ctx context.Context, kind string, cfg fanoutConfig, l load, viewers int, stderr io.Writer) (fanoutResult, error) {
	args := []string{"-queue", strconv.Itoa(cfg.queue)}
	if cfg.profile != "" {
		args = append(args, "-cpuprofile", fmt.Sprintf("%s%s-%d-%s.pprof", cfg.profile, strings.ReplaceAll(l.name, " ", ""), viewers, kind))
	}
	ch, err := startChild(ctx, cfg.exe, "serve-"+kind, stderr, args...)
	if err != nil {
		return fanoutResult{}, err
	}
	defer ch.stop()
	base := "ws://" + ch.addr

	var vs stampedViewers
	defer vs.close()
	if err := vs.dial(ctx, base+"/out/bench", viewers); err != nil {
		return fanoutResult{}, err
	}
	pub, _, err := websocket.DefaultDialer.DialContext(ctx, base+"/in/bench", nil)
	if err != nil {
		return fanoutResult{}, fmt.Errorf("publisher: %w", err)
	}
	defer pub.Close()
	var seq atomic.Uint64
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan error, 1)
	go func() { pubDone <- publish(pubCtx, pub, l, &seq) }()
	defer stopPub()

	// A viewer's handshake answers before the server has subscribed it: the
	// warm-up starts once each has a message, so none is charged as lost
	// what was sent before it was there.
	if !waitFor(ctx, 10*time.Second, func() bool { return vs.allSeen(1) }) {
		return fanoutResult{}, fmt.Errorf("%s: not every viewer received a message within 10 s", kind)
	}
	if err := sleep(ctx, cfg.warmup); err != nil {
		return fanoutResult{}, err
	}
	cpu0, err := ch.cpu()
	if err != nil {
		return fanoutResult{}, err
	}
	t0, first := time.Now(), seq.Load()
	if err := sleep(ctx, cfg.duration); err != nil {
		return fanoutResult{}, err
	}
	cpu1, err := ch.cpu()
	if err != nil {
		return fanoutResult{}, err
	}
	t1, last := time.Now(), seq.Load() // messages [first, last) are the window
	stopPub()
	if err := <-pubDone; err != nil {
		return fanoutResult{}, fmt.Errorf("publisher: %w", err)
	}
	// Let the window's last messages arrive: stragglers beyond this count
	// as lost, and show in the latency tail anyway.
	waitFor(ctx, 2*time.Second, func() bool { return vs.allSeen(last) })
	vs.close()
	res := vs.result(l, first, last, t0, t1)
	res.cpu = cpu1 - cpu0
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
