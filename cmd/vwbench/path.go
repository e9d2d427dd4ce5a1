package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/freeport"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// The path benchmarks run the real vw binary (vw stream and vw relay as
// processes, as deployed) and feed it a synthetic ffmpeg-like feed whose
// packets carry a marker: a magic word, a sequence number, at the end of
// each media packet's payload, where neither the muxer nor the relay looks.
// A viewer of the relay finds the markers and so knows, for every packet,
// when it was written to /ts/ and whether it arrived once.

const markerMagic = 0x76774c54 // "vwLT"

// pathConfig is what the path benchmarks need.
type pathConfig struct {
	vw       string        // the vw binary
	duration time.Duration // measured time for latency
	rate     float64       // feed rate, bits per second
	mutes    int           // mute/unmute cycles
	swaps    int           // hot swaps
	outages  []time.Duration
	repeats  int
}

func runPath(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newBenchFlags("path", stderr)
	var cfg pathConfig
	var outages, only string
	fs.VW(&cfg.vw)
	fs.DurationVar(&cfg.duration, "duration", 4*time.Second, "measured time for the latency figures")
	fs.Float64Var(&cfg.rate, "rate", 4e6, "feed rate, bits per second")
	fs.IntVar(&cfg.mutes, "mutes", 20, "mute/unmute cycles")
	fs.IntVar(&cfg.swaps, "swaps", 10, "destination hot swaps")
	fs.StringVar(&outages, "outages", "300ms,1.5s,4s,20s", "relay outages to recover from, comma-separated")
	fs.StringVar(&only, "only", "", "run only these figures, comma-separated: hop, mute, swap, reconnect")
	fs.IntVar(&cfg.repeats, "repeats", 5, "runs of each relay outage up to 5 s (longer ones run once)")
	fs.Short("duration", "1s")
	fs.Short("mutes", "5")
	fs.Short("swaps", "3")
	fs.Short("outages", "300ms,1.5s")
	fs.Short("repeats", "2")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, o := range strings.Split(outages, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(o))
		if err != nil {
			return fmt.Errorf("-outages: %w", err)
		}
		cfg.outages = append(cfg.outages, d)
	}

	fmt.Fprintf(stdout, "\nvw stream → vw relay, real processes on loopback, a %.1f Mbit/s synthetic feed\n\n", cfg.rate/1e6)
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tp50\tp99\tmax\tnotes")
	for _, b := range []struct {
		name string
		run  func(context.Context, pathConfig, *tabwriter.Writer) error
	}{{"hop", benchHop}, {"mute", benchMute}, {"swap", benchSwap}, {"reconnect", benchReconnect}} {
		if only != "" && !slices.Contains(strings.Split(only, ","), b.name) {
			continue
		}
		if err := b.run(ctx, cfg, tw); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// rig is a vw relay and a vw stream, each a process.
type rig struct {
	cfg    pathConfig
	relay  *vwProc
	stream *vwProc
}

type vwProc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

func startRig(ctx context.Context, cfg pathConfig) (*rig, error) {
	relay, err := startVW(ctx, cfg.vw, "", "relay")
	if err != nil {
		return nil, err
	}
	stream, err := startVW(ctx, cfg.vw, "", "stream", "VW_STATE=off")
	if err != nil {
		relay.stop()
		return nil, err
	}
	return &rig{cfg: cfg, relay: relay, stream: stream}, nil
}

func (r *rig) close() {
	r.stream.stop()
	r.relay.stop()
}

// startVW runs `vw kind` on addr (a free port if empty) and waits until it
// answers.
func startVW(ctx context.Context, exe, addr, kind string, env ...string) (*vwProc, error) {
	p, err := launchVW(exe, addr, kind, env...)
	if err != nil {
		return nil, err
	}
	if err := p.waitUp(ctx, kind); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// launchVW starts `vw kind` on addr (a free port if empty) without waiting.
func launchVW(exe, addr, kind string, env ...string) (*vwProc, error) {
	if addr == "" {
		var err error
		if addr, err = freeport.Addr(); err != nil {
			return nil, err
		}
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(exe, kind)
	cmd.Env = append(os.Environ(), "VW_PORT="+port, "VW_RELAY_LISTEN="+addr, "VW_LOGLEVEL=error")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &vwProc{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitUp waits until the process answers HTTP.
func (p *vwProc) waitUp(ctx context.Context, kind string) error {
	probe := "http://" + p.addr + "/healthcheck"
	if kind == "relay" {
		probe = "http://" + p.addr + "/stats?format=json"
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get(probe); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("vw %s did not come up on %s", kind, p.addr)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func (p *vwProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(6 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *vwProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (r *rig) post(path, body string) (time.Duration, error) {
	start := time.Now()
	resp, err := http.Post("http://"+r.stream.addr+path, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("POST %s %s: %d %s", path, body, resp.StatusCode, b)
	}
	return time.Since(start), nil
}

// feed POSTs a synthetic ffmpeg-like feed to /ts/{name} at a paced rate,
// stamping every media packet with a sequence number whose write time it
// keeps.
type feed struct {
	w      *io.PipeWriter
	sent   sync.Map // seq -> time.Time
	seq    atomic.Uint64
	done   chan struct{}
	cancel context.CancelFunc
}

func startFeed(ctx context.Context, r *rig, name string, video bool, rate float64) *feed {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	f := &feed{w: pw, done: make(chan struct{}), cancel: cancel}
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+r.stream.addr+"/ts/"+name, pr)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	go func() {
		defer close(f.done)
		defer pw.Close()
		s := tscheck.NewSynth(video, 90000)
		frame := time.Duration(s.Frame()) * time.Second / 90000
		if video {
			s.FrameSize = max(188, int(rate/8*frame.Seconds()))
		}
		next := time.Now()
		var buf []byte
		for ctx.Err() == nil {
			buf = s.Append(buf[:0], 1)
			now := time.Now()
			for i := 0; i+ts.PacketSize <= len(buf); i += ts.PacketSize {
				p := buf[i : i+ts.PacketSize]
				if ts.PID(p) != 0x100 || !ts.HasPayload(p) {
					continue
				}
				if off, ok := ts.PayloadOffset(p); !ok || off > ts.PacketSize-32 {
					continue
				}
				seq := f.seq.Add(1)
				binary.BigEndian.PutUint32(p[ts.PacketSize-12:], markerMagic)
				binary.BigEndian.PutUint64(p[ts.PacketSize-8:], seq)
				f.sent.Store(seq, now)
			}
			if _, err := pw.Write(buf); err != nil {
				return
			}
			next = next.Add(frame)
			if err := sleep(ctx, time.Until(next)); err != nil {
				return
			}
		}
	}()
	return f
}

func (f *feed) stop() {
	f.cancel()
	f.w.Close()
	<-f.done
}

// markers returns the sequence numbers carried by the packets in b.
func markers(b []byte, into []uint64) []uint64 {
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		p := b[i : i+ts.PacketSize]
		if binary.BigEndian.Uint32(p[ts.PacketSize-12:]) == markerMagic {
			into = append(into, binary.BigEndian.Uint64(p[ts.PacketSize-8:]))
		}
	}
	return into
}

// watcher is a viewer of a relay route that notes when each marker came.
type watcher struct {
	c     *websocket.Conn
	mu    sync.Mutex
	got   map[uint64]time.Time
	seqs  []uint64  // in arrival order
	marks []mark    // every marked packet, in arrival order
	first time.Time // when the first message came
	pids  map[uint16]int
	kinds map[uint16]string // PID → what its last PES start said: video, audio
	done  chan struct{}
}

// mark is a marked packet as a watcher got it.
type mark struct {
	pid uint16
	seq uint64
	at  time.Time
}

func watchRoute(addr, route string) (*watcher, error) {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+route, nil)
	if err != nil {
		return nil, err
	}
	w := &watcher{c: c, got: map[uint64]time.Time{}, pids: map[uint16]int{}, kinds: map[uint16]string{}, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var seqs []uint64
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			now := time.Now()
			seqs = markers(b, seqs[:0])
			w.mu.Lock()
			if w.first.IsZero() {
				w.first = now
			}
			for _, s := range seqs {
				if _, dup := w.got[s]; !dup {
					w.got[s] = now
				}
				w.seqs = append(w.seqs, s)
			}
			for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
				p := b[i : i+ts.PacketSize]
				w.pids[ts.PID(p)]++
				if k := pesKind(p); k != "" {
					w.kinds[ts.PID(p)] = k
				}
				if binary.BigEndian.Uint32(p[ts.PacketSize-12:]) == markerMagic {
					w.marks = append(w.marks, mark{pid: ts.PID(p), seq: binary.BigEndian.Uint64(p[ts.PacketSize-8:]), at: now})
				}
			}
			w.mu.Unlock()
		}
	}()
	return w, nil
}

func (w *watcher) close() {
	w.c.Close()
	<-w.done
}

// has reports whether the packet marked seq has arrived.
func (w *watcher) has(seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.got[seq]
	return ok
}

func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seqs)
}

// pesKind says what the PES starting in packet p carries: "video",
// "audio", or "" when no PES starts there.
func pesKind(p []byte) string {
	off, ok := ts.PayloadOffset(p)
	if !ok || !ts.PayloadUnitStart(p) || off+4 > len(p) || p[off] != 0 || p[off+1] != 0 || p[off+2] != 1 {
		return ""
	}
	switch id := p[off+3]; {
	case ts.IsVideoStreamID(id):
		return "video"
	case ts.IsAudioStreamID(id):
		return "audio"
	}
	return ""
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || sleep(ctx, 2*time.Millisecond) != nil {
			return false
		}
	}
	return true
}

func pct(v []time.Duration, p float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[int(float64(len(v)-1)*p/100)]
}

func row(tw io.Writer, name string, v []time.Duration, notes string) {
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, ms(pct(v, 50)), ms(pct(v, 99)), ms(pct(v, 100)), notes)
}

// benchHop measures the latency vw adds: bytes written to /ts/ until they
// come out of the relay to a viewer, straight from a feed and through a
// stream rule's muxer.
func benchHop(ctx context.Context, cfg pathConfig, tw *tabwriter.Writer) error {
	r, err := startRig(ctx, cfg)
	if err != nil {
		return err
	}
	defer r.close()
	for _, c := range []struct{ name, stream string }{
		{"latency /ts/ → relay viewer, feed direct", "lat"},
		{"latency /ts/ → relay viewer, through the muxer", "muxed"},
	} {
		if c.stream == "muxed" {
			if _, err := r.post("/api/streams", `{"stream":"muxed","feeds":["lat"]}`); err != nil {
				return err
			}
		}
		route := "/bench/" + c.stream
		if _, err := r.post("/api/destinations", `{"stream":"`+c.stream+`","destination":"ws://`+r.relay.addr+`/in`+route+`","id":"`+c.stream+`"}`); err != nil {
			return err
		}
		w, err := watchRoute(r.relay.addr, "/out"+route)
		if err != nil {
			return err
		}
		f := startFeed(ctx, r, "lat", true, cfg.rate)
		// The muxer joins a video feed at a keyframe (or after a second).
		waitFor(ctx, 5*time.Second, func() bool { return w.count() > 0 })
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
		from := f.seq.Load()
		if err := sleep(ctx, cfg.duration); err != nil {
			return err
		}
		to := f.seq.Load()
		waitFor(ctx, 2*time.Second, func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			_, ok := w.got[to]
			return ok
		})
		f.stop()
		w.close()
		var lat []time.Duration
		lost := 0
		w.mu.Lock()
		for s := from + 1; s <= to; s++ {
			at, ok := w.got[s]
			sent, _ := f.sent.Load(s)
			if !ok {
				lost++
				continue
			}
			lat = append(lat, at.Sub(sent.(time.Time)))
		}
		w.mu.Unlock()
		row(tw, c.name, lat, fmt.Sprintf("%d packets, %d lost", len(lat), lost))
	}
	return nil
}
