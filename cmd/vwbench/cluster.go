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
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/internal/freeport"
	"github.com/vwlab/vw/ts"
)

// vwbench cluster: real `vw relay` processes clustered on loopback (A the
// seed, B and C joining it), one paced stream published on A, and:
//
//   - the latency a hop between relays adds: publisher on A → viewers on B,
//     against the same viewers on A;
//   - the delivering relay's CPU per GB for viewers on a remote relay (B)
//     against the same viewers local (A);
//   - the origin's extra CPU per watching relay: A with the stream watched
//     nowhere, on B, on B and C;
//   - a single relay with clustering on and no peers against one without.
//
// Each figure is one phase on its own topic; CPU is the processes' user +
// system time (from /proc) over the phase's measured window.

type clusterConfig struct {
	vw       string
	viewers  int
	rate     float64
	msgSize  int
	duration time.Duration
	warmup   time.Duration
}

func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseCluster(args, stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vwbench-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	secret := filepath.Join(dir, "cluster.secret")
	if err := os.WriteFile(secret, []byte("vwbench-cluster-secret-0123456789abcdef\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\ncluster: vw relay processes on loopback, one %.1f Mbit/s stream (%d-byte messages), %d viewers; %v measured after %v per phase\n\n",
		cfg.rate/1e6, cfg.msgSize, cfg.viewers, cfg.duration, cfg.warmup)
	var ph clusterPhases
	if err := ph.measureMesh(ctx, cfg, secret); err != nil {
		return err
	}
	if err := ph.measureSingles(ctx, cfg, secret); err != nil {
		return err
	}
	return ph.print(stdout)
}

func parseCluster(args []string, stderr io.Writer) (clusterConfig, error) {
	fs := newBenchFlags("cluster", stderr)
	var cfg clusterConfig
	fs.VW(&cfg.vw)
	fs.IntVar(&cfg.viewers, "viewers", 100, "websocket viewers of the stream")
	fs.Float64Var(&cfg.rate, "rate", 4e6, "stream rate, bits per second")
	fs.IntVar(&cfg.msgSize, "msg", 87*ts.PacketSize, "message size in bytes (whole 188-byte packets)")
	fs.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time per phase")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "time before measuring, per phase")
	fs.Short("viewers", "10")
	fs.Short("duration", "1s")
	fs.Short("warmup", "300ms")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	cfg.msgSize = max(1, cfg.msgSize/ts.PacketSize) * ts.PacketSize
	if cfg.viewers < 2 || cfg.rate <= 0 || cfg.duration <= 0 {
		return cfg, errors.New("cluster: -viewers (at least 2), -rate and -duration must be positive")
	}
	return cfg, nil
}

// clusterPhases are the phases' results and the relays each figure's CPU
// is read from.
type clusterPhases struct {
	origin, local, remote, two phaseResult // on the mesh A, B, C
	clusterOfOne, single       phaseResult // one relay, clustered or not
	a, b, alone, plain         *clusterProc
}

// measureMesh starts A (the seed), B and C joining it, and measures the
// stream published on A watched nowhere, on A, on B, and on B and C.
func (ph *clusterPhases) measureMesh(ctx context.Context, cfg clusterConfig, secret string) error {
	var relays []*clusterProc
	defer func() {
		for _, r := range relays {
			r.stop()
		}
	}()
	for _, name := range []string{"a", "b", "c"} {
		var seed *clusterProc
		if len(relays) > 0 {
			seed = relays[0]
		}
		r, err := startClusterRelay(ctx, cfg.vw, name, secret, seed, true)
		if err != nil {
			return err
		}
		relays = append(relays, r)
	}
	if err := waitClusterMesh(ctx, relays); err != nil {
		return err
	}
	a, b, c, n := relays[0], relays[1], relays[2], cfg.viewers
	ph.a, ph.b = a, b
	for _, p := range []struct {
		into   *phaseResult
		topic  string
		at     []*clusterProc
		counts []int
	}{
		{&ph.origin, "nowhere", nil, nil},
		{&ph.local, "local", []*clusterProc{a}, []int{n}},
		{&ph.remote, "remote", []*clusterProc{b}, []int{n}},
		{&ph.two, "two", []*clusterProc{b, c}, []int{n / 2, n - n/2}},
	} {
		r, err := measurePhase(ctx, cfg, p.topic, a, p.at, p.counts)
		if err != nil {
			return err
		}
		*p.into = r
	}
	return nil
}

// measureSingles measures one relay alone, clustered with no peers and
// without a cluster.
func (ph *clusterPhases) measureSingles(ctx context.Context, cfg clusterConfig, secret string) error {
	for _, p := range []struct {
		into      *phaseResult
		proc      **clusterProc
		name      string
		clustered bool
	}{
		{&ph.clusterOfOne, &ph.alone, "alone", true},
		{&ph.single, &ph.plain, "plain", false},
	} {
		r, err := startClusterRelay(ctx, cfg.vw, p.name, secret, nil, p.clustered)
		if err != nil {
			return err
		}
		*p.proc = r
		*p.into, err = measurePhase(ctx, cfg, p.name, r, []*clusterProc{r}, []int{cfg.viewers})
		r.stop()
		if err != nil {
			return err
		}
	}
	return nil
}

func (ph *clusterPhases) print(stdout io.Writer) error {
	a, b, alone, plain := ph.a, ph.b, ph.alone, ph.plain
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tresult\treference in the same run")
	fmt.Fprintf(tw, "latency, publisher on A → viewers on B\tp50 %s, p99 %s, max %s\tviewers on A: p50 %s, p99 %s\n",
		ms(ph.remote.pct(50)), ms(ph.remote.pct(99)), ms(ph.remote.pct(100)), ms(ph.local.pct(50)), ms(ph.local.pct(99)))
	fmt.Fprintf(tw, "CPU per GB delivered, viewers on B (B's CPU)\t%.3f s/GB (%.2fx)\tviewers on A (A's CPU): %.3f s/GB\n",
		ph.remote.perGB(b), ph.remote.perGB(b)/ph.local.perGB(a), ph.local.perGB(a))
	base := ph.origin.share(a)
	fmt.Fprintf(tw, "origin's CPU for the stream watched on B / on B and C\t%.1f%% / %.1f%% of a core: +%.1f%% per watching relay\twatched nowhere: %.1f%%\n",
		ph.remote.share(a), ph.two.share(a), (ph.two.share(a)-base)/2, base)
	fmt.Fprintf(tw, "single relay, cluster of one (no peers)\t%.3f s/GB\tno cluster: %.3f s/GB (%.2fx)\n",
		ph.clusterOfOne.perGB(alone), ph.single.perGB(plain), ph.clusterOfOne.perGB(alone)/ph.single.perGB(plain))
	lost := ph.origin.lost + ph.local.lost + ph.remote.lost + ph.two.lost + ph.clusterOfOne.lost + ph.single.lost
	fmt.Fprintf(tw, "messages lost over every phase\t%d\t\n", lost)
	return tw.Flush()
}

// clusterProc is one `vw relay` process.
type clusterProc struct {
	name  string
	addr  string // HTTP
	route string // cluster listener
	cmd   *exec.Cmd
	done  chan struct{}
	once  sync.Once
}

// startClusterRelay runs `vw relay` named name, joining seed; clustered
// false runs it with no cluster at all.
func startClusterRelay(ctx context.Context, vw, name, secret string, seed *clusterProc, clustered bool) (*clusterProc, error) {
	addr, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	route, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(vw, "relay")
	cmd.Env = append(os.Environ(), "VW_RELAY_LISTEN="+addr, "VW_LOGLEVEL=error", "VW_RELAY_STATE=off",
		"VW_RELAY_MAX_CONNS_PER_ADDR=100000", "VW_RELAY_MAX_VIEWERS=100000")
	if clustered {
		cmd.Env = append(cmd.Env, "VW_RELAY_NODE="+name, "VW_RELAY_CLUSTER_LISTEN="+route, "VW_RELAY_CLUSTER_SECRET_FILE="+secret)
		if seed != nil {
			cmd.Env = append(cmd.Env, "VW_RELAY_CLUSTER_ROUTES=nats://"+seed.route)
		}
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &clusterProc{name: name, addr: addr, route: route, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := p.stats(); err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("vw relay %s did not come up on %s", name, addr)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			p.stop()
			return nil, err
		}
	}
}

func (p *clusterProc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(6 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

func (p *clusterProc) stats() (crossbar.Stats, error) {
	var st crossbar.Stats
	resp, err := http.Get("http://" + p.addr + "/stats?format=json")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// cpu is the process's user + system time so far.
func (p *clusterProc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	user, err1 := strconv.ParseInt(f[11], 10, 64)
	sys, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticks = 100 // USER_HZ
	return time.Duration(user+sys) * time.Second / ticks, nil
}

// waitClusterMesh waits until every relay sees every other up.
func waitClusterMesh(ctx context.Context, relays []*clusterProc) error {
	deadline := time.Now().Add(20 * time.Second)
	for _, r := range relays {
		for {
			st, err := r.stats()
			up := 0
			if err == nil && st.Cluster != nil {
				for _, p := range st.Cluster.Peers {
					if p.Up {
						up++
					}
				}
			}
			if up == len(relays)-1 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("relay %s sees %d of %d peers", r.name, up, len(relays)-1)
			}
			if err := sleep(ctx, 50*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// phaseResult is one phase's figures.
type phaseResult struct {
	window    time.Duration
	cpu       map[*clusterProc]time.Duration
	delivered uint64
	latencies []time.Duration
	lost      uint64
}

func (r phaseResult) perGB(p *clusterProc) float64 {
	if r.delivered == 0 {
		return 0
	}
	return r.cpu[p].Seconds() / (float64(r.delivered) / 1e9)
}

// share is p's CPU as a percentage of one core over the window.
func (r phaseResult) share(p *clusterProc) float64 {
	return 100 * r.cpu[p].Seconds() / r.window.Seconds()
}

func (r phaseResult) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[int(float64(len(r.latencies)-1)*p/100)]
}

// measurePhase publishes the stream on pub's relay to counts[i] viewers on
// at[i], on a topic of its own, and measures every relay of the phase.
func measurePhase(ctx context.Context, cfg clusterConfig, topic string, pub *clusterProc, at []*clusterProc, counts []int) (phaseResult, error) {
	res := phaseResult{cpu: map[*clusterProc]time.Duration{}}
	procs := []*clusterProc{pub}
	var vs stampedViewers
	defer vs.close()
	for i, r := range at {
		if !slices.Contains(procs, r) {
			procs = append(procs, r)
		}
		if err := vs.dial(ctx, "ws://"+r.addr+"/out/"+topic, counts[i]); err != nil {
			return res, err
		}
	}
	if err := waitWatched(ctx, pub, "/out/"+topic, at, counts); err != nil {
		return res, err
	}
	c, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+pub.addr+"/in/"+topic, nil)
	if err != nil {
		return res, err
	}
	defer c.Close()
	var seq atomic.Uint64
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	pubDone := make(chan error, 1)
	go func() {
		pubDone <- publish(pubCtx, c, fixedLoad(cfg.msgSize, cfg.rate), &seq)
	}()
	if err := sleep(ctx, cfg.warmup); err != nil {
		return res, err
	}
	cpu0 := map[*clusterProc]time.Duration{}
	for _, p := range procs {
		if cpu0[p], err = p.cpu(); err != nil {
			return res, err
		}
	}
	first, start := seq.Load(), time.Now()
	if err := sleep(ctx, cfg.duration); err != nil {
		return res, err
	}
	for _, p := range procs {
		t, err := p.cpu()
		if err != nil {
			return res, err
		}
		res.cpu[p] = t - cpu0[p]
	}
	res.window = time.Since(start)
	last := seq.Load()
	stopPub()
	if err := <-pubDone; err != nil {
		return res, fmt.Errorf("publisher: %w", err)
	}
	// The window's last messages still on their way (a busy machine can
	// hold them a while) count as lost after this.
	if err := sleep(ctx, time.Second); err != nil {
		return res, err
	}
	vs.close()
	r := vs.result(fixedLoad(cfg.msgSize, cfg.rate), first, last, start, start.Add(res.window))
	res.latencies, res.delivered, res.lost = r.latencies, r.delivered, r.lost
	return res, nil
}

// waitWatched waits until pub's view of the cluster shows each relay of
// at (other than pub) taking topic with its viewers.
func waitWatched(ctx context.Context, pub *clusterProc, topic string, at []*clusterProc, counts []int) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := pub.stats()
		ok := err == nil
		for i, r := range at {
			if r == pub || !ok {
				continue
			}
			ok = false
			if st.Cluster == nil {
				break
			}
			for _, ct := range st.Cluster.Topics {
				for _, rt := range ct.Relays {
					if ct.Name == topic && rt.Node == r.name && rt.Watching && rt.Viewers >= counts[i] {
						ok = true
					}
				}
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never saw every relay watch %s", pub.name, topic)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}
