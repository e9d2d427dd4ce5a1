package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/ts"
)

// fanoutConfig is what fanout measures.
type fanoutConfig struct {
	viewers  int
	rate     float64 // bits per second
	msgSize  int     // bytes, whole TS packets
	duration time.Duration
	warmup   time.Duration
	queue    int
	servers  []string
	repeat   int
	exe      string
	profile  string
}

func runFanout(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newBenchFlags("fanout", stderr)
	var cfg fanoutConfig
	var servers string
	fs.IntVar(&cfg.viewers, "viewers", 200, "websocket viewers of the stream")
	fs.Float64Var(&cfg.rate, "rate", 4e6, "stream rate, bits per second")
	fs.IntVar(&cfg.msgSize, "msg", 87*ts.PacketSize, "message size in bytes (rounded to whole 188-byte packets)")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time per server")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "time before measuring, per server")
	fs.IntVar(&cfg.queue, "queue", crossbar.DefaultQueue, "relay: each viewer's queue, in messages")
	fs.StringVar(&servers, "servers", "floor,relay", "servers to measure, in order")
	fs.IntVar(&cfg.repeat, "repeat", 1, "rounds over the servers: loopback figures are noisy, compare medians")
	fs.StringVar(&cfg.profile, "cpuprofile", "", "write each server's CPU profile to this prefix + server name + .pprof")
	fs.Short("duration", "2s")
	fs.Short("warmup", "500ms")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.msgSize = max(1, cfg.msgSize/ts.PacketSize) * ts.PacketSize
	cfg.servers = strings.Split(servers, ",")
	if cfg.viewers < 1 || cfg.rate <= 0 || cfg.duration <= 0 || cfg.repeat < 1 {
		return errors.New("fanout: -viewers, -rate, -duration and -repeat must be positive")
	}
	cfg.exe = getenv("VWBENCH_EXE")
	if cfg.exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding vwbench to run the servers: %w", err)
		}
		cfg.exe = exe
	}

	perSec := cfg.rate / 8 / float64(cfg.msgSize)
	fmt.Fprintf(stdout, "fan-out: %d viewers of one %.1f Mbit/s stream (%d-byte messages, %.1f/s) on loopback; %v measured after %v warm-up per server\n\n",
		cfg.viewers, cfg.rate/1e6, cfg.msgSize, perSec, cfg.duration, cfg.warmup)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tdelivered\tCPU\tCPU per GB\tp50 latency\tp99 latency\tmax latency\tlost msgs\tdropped viewers\t")
	perGB := map[string][]float64{}
	for round := range cfg.repeat {
		for _, kind := range cfg.servers {
			res, err := measureFanout(ctx, kind, cfg, stderr)
			if err != nil {
				return fmt.Errorf("%s: %w", kind, err)
			}
			perGB[kind] = append(perGB[kind], res.cpuPerGB())
			name := res.kind
			if cfg.repeat > 1 {
				name = fmt.Sprintf("%s #%d", name, round+1)
			}
			fmt.Fprintf(tw, "%s\t%.1f MB\t%.3f s\t%.3f s/GB\t%s\t%s\t%s\t%d\t%d\t\n", name,
				float64(res.delivered)/1e6, res.cpu.Seconds(), res.cpuPerGB(),
				ms(res.percentile(50)), ms(res.percentile(99)), ms(res.percentile(100)), res.lost, res.dropped)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(cfg.servers) == 2 {
		a, b := cfg.servers[0], cfg.servers[1]
		if ma, mb := median(perGB[a]), median(perGB[b]); ma > 0 {
			of := ""
			if cfg.repeat > 1 {
				of = fmt.Sprintf(" (medians of %d rounds)", cfg.repeat)
			}
			fmt.Fprintf(stdout, "\n%s uses %.2fx the CPU per GB of %s%s.\n", b, mb/ma, a, of)
		}
	}
	return nil
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
	kind      string
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

// sample is one message as a viewer received it.
type sample struct {
	seq uint64
	lat time.Duration
}

// measureFanout runs one server as a child process, connects the viewers and
// a paced publisher, and measures.
func measureFanout(ctx context.Context, kind string, cfg fanoutConfig, stderr io.Writer) (fanoutResult, error) {
	args := []string{"-queue", strconv.Itoa(cfg.queue)}
	if cfg.profile != "" {
		args = append(args, "-cpuprofile", cfg.profile+kind+".pprof")
	}
	ch, err := startChild(ctx, cfg.exe, "serve-"+kind, stderr, args...)
	if err != nil {
		return fanoutResult{}, err
	}
	defer ch.stop()
	base := "ws://" + ch.addr

	var stopping atomic.Bool
	var dropped atomic.Int64
	samples := make([][]sample, cfg.viewers)
	var readers sync.WaitGroup
	conns := make([]*websocket.Conn, 0, cfg.viewers)
	defer func() {
		stopping.Store(true)
		for _, c := range conns {
			_ = c.Close()
		}
		readers.Wait()
	}()
	for i := range cfg.viewers {
		c, _, err := websocket.DefaultDialer.DialContext(ctx, base+"/out/bench", nil)
		if err != nil {
			return fanoutResult{}, fmt.Errorf("viewer %d: %w", i, err)
		}
		conns = append(conns, c)
		readers.Add(1)
		go func() {
			defer readers.Done()
			var stamp [20]byte // TS header, send time, sequence number
			for {
				_, r, err := c.NextReader()
				if err != nil {
					if !stopping.Load() {
						dropped.Add(1)
					}
					return
				}
				if _, err := io.ReadFull(r, stamp[:]); err != nil {
					continue
				}
				now := time.Now()
				if _, err := io.Copy(io.Discard, r); err != nil {
					continue
				}
				sent := int64(binary.BigEndian.Uint64(stamp[4:12]))
				samples[i] = append(samples[i], sample{seq: binary.BigEndian.Uint64(stamp[12:20]), lat: now.Sub(time.Unix(0, sent))})
			}
		}()
	}

	pub, _, err := websocket.DefaultDialer.DialContext(ctx, base+"/in/bench", nil)
	if err != nil {
		return fanoutResult{}, fmt.Errorf("publisher: %w", err)
	}
	defer pub.Close()
	var seq atomic.Uint64
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan error, 1)
	go func() { pubDone <- publish(pubCtx, pub, cfg, &seq) }()
	defer stopPub()

	if err := sleep(ctx, cfg.warmup); err != nil {
		return fanoutResult{}, err
	}
	cpu0, err := ch.cpu()
	if err != nil {
		return fanoutResult{}, err
	}
	first := seq.Load()
	if err := sleep(ctx, cfg.duration); err != nil {
		return fanoutResult{}, err
	}
	cpu1, err := ch.cpu()
	if err != nil {
		return fanoutResult{}, err
	}
	last := seq.Load() // messages [first, last) are the window
	stopPub()
	if err := <-pubDone; err != nil {
		return fanoutResult{}, fmt.Errorf("publisher: %w", err)
	}
	// Let the window's last messages arrive: stragglers beyond this count
	// as lost, and show in the latency tail anyway.
	if err := sleep(ctx, 200*time.Millisecond); err != nil {
		return fanoutResult{}, err
	}
	stopping.Store(true)
	for _, c := range conns {
		_ = c.Close()
	}
	readers.Wait()

	res := fanoutResult{kind: kind, cpu: cpu1 - cpu0, dropped: int(dropped.Load())}
	for _, ss := range samples {
		got := uint64(0)
		for _, s := range ss {
			if s.seq >= first && s.seq < last {
				got++
				res.latencies = append(res.latencies, s.lat)
			}
		}
		res.delivered += got * uint64(cfg.msgSize)
		res.lost += (last - first) - min(got, last-first)
	}
	slices.Sort(res.latencies)
	return res, nil
}

// publish sends TS-shaped messages at the configured rate, each stamped
// with its send time and sequence number in the first packet's payload.
func publish(ctx context.Context, c *websocket.Conn, cfg fanoutConfig, seq *atomic.Uint64) error {
	msg := make([]byte, cfg.msgSize)
	for i := 0; i < len(msg); i += ts.PacketSize {
		msg[i], msg[i+1], msg[i+2], msg[i+3] = ts.SyncByte, 0x01, 0x00, 0x10
	}
	msg[1] |= 0x40 // payload unit start, as a PES would have
	interval := time.Duration(float64(time.Second) * float64(cfg.msgSize*8) / cfg.rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for cc := byte(0); ; cc++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for i := 0; i < len(msg); i += ts.PacketSize {
			msg[i+3] = 0x10 | cc&0x0f
		}
		binary.BigEndian.PutUint64(msg[4:], uint64(time.Now().UnixNano()))
		binary.BigEndian.PutUint64(msg[12:], seq.Load())
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			return err
		}
		seq.Add(1)
	}
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

// child is a server under test running as a child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	addr  string
	once  sync.Once
}

func startChild(ctx context.Context, exe, command string, stderr io.Writer, args ...string) (*child, error) {
	cmd := exec.CommandContext(ctx, exe, append([]string{command}, args...)...)
	cmd.Env = append(os.Environ(), "VWBENCH_CHILD=1")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s %s: %w", exe, command, err)
	}
	ch := &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, err := ch.out.ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if err != nil || !ok {
		ch.stop()
		return nil, fmt.Errorf("%s %s did not say where it listens: %q %v", exe, command, line, err)
	}
	ch.addr = addr
	return ch, nil
}

// cpu asks the child for its CPU time so far (user + system).
func (c *child) cpu() (time.Duration, error) {
	if _, err := io.WriteString(c.stdin, "rusage\n"); err != nil {
		return 0, err
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("reading the child's rusage: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "rusage" {
		return 0, fmt.Errorf("the child answered %q to rusage", line)
	}
	user, err1 := strconv.ParseInt(f[1], 10, 64)
	sys, err2 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("the child answered %q to rusage: %w", line, err)
	}
	return time.Duration(user + sys), nil
}

// stop closes the child's stdin, which ends it, and waits for it.
func (c *child) stop() {
	c.once.Do(func() {
		_ = c.stdin.Close()
		done := make(chan struct{})
		go func() {
			_ = c.cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	})
}
