package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// viewer collects what a relay route sends.
type viewer struct {
	*wsClient
	mu   sync.Mutex
	data []byte
	msgs int
	// ends and at say where each message ends in data, and when it came.
	ends []int
	at   []time.Time
	stop chan struct{}
	done chan struct{}
}

// watch collects what a viewer of the relay's route gets, from the moment
// the relay counts it: a viewer counts once it receives, so nothing
// published after watch returns passes it by.
func watch(t testing.TB, relay *proc, route string) *viewer {
	t.Helper()
	name := strings.Trim(route, "/")
	before, _ := topicStats(t, relay, name)
	v := watchURL(t, "ws://"+relay.addr+route, nil)
	testutil.Eventually(t, 10*time.Second, func() bool {
		ts, _ := topicStats(t, relay, name)
		return ts.Viewers > before.Viewers
	}, "the relay never counted the viewer of %s: %+v", route, relayStats(t, relay))
	return v
}

// watchURL collects what a websocket URL sends.
func watchURL(t testing.TB, url string, h http.Header) *viewer {
	t.Helper()
	v := &viewer{wsClient: dialWS(t, url, h), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(v.done)
		for {
			select {
			case m := <-v.msgs_():
				v.mu.Lock()
				v.data = append(v.data, m.data...)
				v.msgs++
				v.ends, v.at = append(v.ends, len(v.data)), append(v.at, m.at)
				v.mu.Unlock()
			case <-v.wsClient.done:
				return
			case <-v.stop:
				return
			}
		}
	}()
	t.Cleanup(func() { close(v.stop); <-v.done })
	return v
}

func (v *viewer) msgs_() chan wsMsg { return v.wsClient.msgs }

func (v *viewer) bytes() []byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	return bytes.Clone(v.data)
}

func (v *viewer) size() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.data)
}

// videoSpan returns how much video time the viewer has received, from the
// first video PTS to the last.
func (v *viewer) videoSpan() time.Duration {
	vid := tscheck.Walk(v.bytes()).Kind(true)
	if len(vid) == 0 || len(vid[0].PTS) < 2 {
		return 0
	}
	pts := vid[0].PTS
	return time.Duration(pts[len(pts)-1].Value-pts[0].Value) * time.Second / 90000
}

// jitter returns how much the arrivals of each elementary stream's PES
// wandered against its timestamps, summed over the streams: what a busy
// machine's scheduler added on the way, which no muxer can take out.
func (v *viewer) jitter() time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	pids := map[uint16]*tscheck.Lag{}
	msg := 0
	tscheck.EachPTS(v.data, func(off int, pid uint16, pts uint64) {
		for v.ends[msg] <= off {
			msg++
		}
		if pids[pid] == nil {
			pids[pid] = &tscheck.Lag{}
		}
		pids[pid].Note(v.at[msg], pts)
	})
	var sum time.Duration
	for _, l := range pids {
		sum += l.Jitter()
	}
	return sum
}

// grows waits until the viewer has received more than n more bytes.
func (v *viewer) grows(t testing.TB, n int, within time.Duration, what string) {
	t.Helper()
	start := v.size()
	testutil.Eventually(t, within, func() bool { return v.size() > start+n }, "%s: no data", what)
}

// ccBreaks counts continuity breaks on pid in a run of packets.
func ccBreaks(b []byte, pid uint16) (breaks, packets int) {
	last := -1
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		p := b[i : i+ts.PacketSize]
		if ts.PID(p) != pid || !ts.HasPayload(p) {
			continue
		}
		packets++
		cc := int(ts.CC(p))
		if last >= 0 && cc != (last+1)%16 {
			breaks++
		}
		last = cc
	}
	return breaks, packets
}

func postRule(t testing.TB, stream *proc, path, body string) {
	t.Helper()
	if status, out := httpDo(t, "POST", "http://"+stream.addr+path, body); status != 200 {
		t.Fatalf("POST %s %s: %d %s", path, body, status, out)
	}
}

// TestRelayRestart kills the relay mid-stream and brings it back on the same
// address: vw stream reconnects on its own and data flows to viewers again,
// and ffmpeg's POST is never dropped.
func TestRelayRestart(t *testing.T) {
	relay := relayProc(t)
	stream := streamProc(t)
	cam := ffmpeg(t, "video", "http://"+stream.addr+"/ts/video0")
	postRule(t, stream, "/api/destinations", `{"stream":"video0","destination":"ws://`+relay.addr+`/in/lab1/cam","id":"0"}`)
	v := watch(t, relay, "/out/lab1/cam")
	v.grows(t, 10_000, 10*time.Second, "before the relay restart")

	relay.kill()
	relay = startVW(t, relay.addr, []string{"VW_RELAY_LISTEN=" + relay.addr}, "relay")
	v2 := watch(t, relay, "/out/lab1/cam")
	v2.grows(t, 10_000, 15*time.Second, "after the relay restart")

	if !cam.Alive() {
		t.Fatal("ffmpeg died while the relay was away")
	}
	if strings.Contains(stream.logText(), "feed ended") {
		t.Fatalf("the feed's POST was dropped:\n%s", stream.logText())
	}
}

// TestHotSwap moves a destination to another relay route with the same id:
// the new route gets data while ffmpeg's POST stays connected, the old one
// stops, and no packet is lost or repeated at the switch.
func TestHotSwap(t *testing.T) {
	relay := relayProc(t)
	stream := streamProc(t)
	cam := ffmpeg(t, "video", "http://"+stream.addr+"/ts/video0")
	a := watch(t, relay, "/out/lab1/a")
	b := watch(t, relay, "/out/lab1/b")
	postRule(t, stream, "/api/destinations", `{"stream":"video0","destination":"ws://`+relay.addr+`/in/lab1/a","id":"0"}`)
	a.grows(t, 20_000, 10*time.Second, "route a")

	postRule(t, stream, "/api/destinations", `{"stream":"video0","destination":"ws://`+relay.addr+`/in/lab1/b","id":"0"}`)
	b.grows(t, 20_000, 10*time.Second, "route b after the swap")
	// The old connection ends after the swap; a gets nothing more.
	testutil.Eventually(t, 5*time.Second, func() bool {
		ts, ok := topicStats(t, relay, "out/lab1/a")
		return !ok || ts.Publishers == 0
	}, "the old destination's connection was not closed")
	endA := a.size()
	b.grows(t, 20_000, 10*time.Second, "route b")
	if a.size() != endA {
		t.Fatal("route a still gets data after the swap")
	}

	// Route a's data then route b's is one unbroken run of the feed.
	joined := append(a.bytes(), b.bytes()...)
	if breaks, n := ccBreaks(joined, 0x100); breaks != 0 || n < 100 {
		t.Fatalf("%d continuity breaks in %d video packets across the swap", breaks, n)
	}
	if !cam.Alive() || strings.Contains(stream.logText(), "feed ended") {
		t.Fatal("the swap touched ffmpeg's POST")
	}
}

// TestGracefulShutdown stops vw stream with SIGTERM while it ingests,
// pushes and records: it exits 0 within 5 s, closes its relay connection
// with a close frame, and the recording is flushed whole: it ends with the
// very bytes the relay's viewer received last.
func TestGracefulShutdown(t *testing.T) {
	relay := relayProc(t)
	dir := t.TempDir()
	stream := streamProc(t, "VW_RECORDINGS="+dir)
	ffmpeg(t, "video", "http://"+stream.addr+"/ts/video0")
	// Watching from before the destination exists, the viewer gets all
	// the relay takes in.
	v := watch(t, relay, "/out/lab1/cam")
	postRule(t, stream, "/api/destinations", `{"stream":"video0","destination":"ws://`+relay.addr+`/in/lab1/cam","id":"0","file":"cam.ts"}`)
	v.grows(t, 50_000, 10*time.Second, "before shutdown")

	start := time.Now()
	if err := stream.stop(t); err != nil {
		t.Fatalf("vw stream exit: %v\n%s", err, stream.logText())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	// The relay saw the publisher leave with a close frame (1000), not a
	// dropped connection.
	testutil.Eventually(t, 5*time.Second, func() bool {
		for _, l := range lines(relay.logText()) {
			if strings.Contains(l, "role=publisher") && strings.Contains(l, "disconnected") {
				return strings.Contains(l, "close 1000")
			}
		}
		return false
	}, "the relay did not see vw stream close its connection with 1000:\n%s", relay.logText())
	testutil.Eventually(t, 5*time.Second, func() bool {
		ts, ok := topicStats(t, relay, "out/lab1/cam")
		return ok && ts.Publishers == 0 && uint64(v.size()) == ts.BytesIn
	}, "the viewer did not get all the relay took in: %d bytes", v.size())

	rec, err := os.ReadFile(filepath.Join(dir, "cam.ts"))
	if err != nil {
		t.Fatal(err)
	}
	got := v.bytes()
	last := got[len(got)-20*ts.PacketSize:]
	if len(rec)%ts.PacketSize != 0 || !bytes.Contains(rec, last) {
		t.Fatalf("the recording (%d bytes) lacks the last bytes sent before the shutdown: not flushed whole", len(rec))
	}
}

// TestRulesSurviveSIGKILL kills vw stream with SIGKILL in the middle of rule
// changes, 100 times: each restart restores a complete rule set, the one
// before the change or the one after, never a mix or nothing.
func TestRulesSurviveSIGKILL(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "rules.json")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := []string{fmt.Sprintf("VW_PORT=%d", port), "VW_STATE=" + state, "VW_LOGLEVEL=warn"}
	rng := rand.New(rand.NewSource(1))

	// Generation g's rule set: stream "s" of feeds f0..f(g%5).
	want := func(g int) string {
		if g == 0 {
			return "{}" // the fresh start
		}
		feeds := []string{}
		for i := 0; i <= g%5; i++ {
			feeds = append(feeds, fmt.Sprintf(`"f%d"`, i))
		}
		return fmt.Sprintf(`{"s":[%s]}`, strings.Join(feeds, ","))
	}
	// Kill within twice the time a change takes here, so that about half the
	// kills land inside one, on a fast machine or a loaded one.
	p := startVW(t, addr, env, "stream")
	var took []time.Duration
	for range 7 {
		start := time.Now()
		postRule(t, p, "/api/streams", `{"stream":"calibrate","feeds":["x"]}`)
		took = append(took, time.Since(start))
	}
	p.kill()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	window := 2 * took[len(took)/2]
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}

	gen := 0
	cut, landed := 0, 0 // changes the kill interrupted, and ones it did not
	for i := range 100 {
		p = startVW(t, addr, env, "stream")
		status, got := httpDo(t, "GET", "http://"+addr+"/api/streams/all", "")
		if status != 200 {
			t.Fatalf("restart %d: %d %s", i, status, got)
		}
		// The restored set must be the last one whose POST was answered, or
		// the one whose POST was cut by the kill.
		if got != want(gen) && got != want(gen+1) {
			t.Fatalf("restart %d restored %s, want %s or %s", i, got, want(gen), want(gen+1))
		}
		if got == want(gen+1) {
			gen++ // the kill came after the save but before the answer
		}
		// Change the rules, and kill at a random moment of the change.
		next := gen + 1
		body := fmt.Sprintf(`{"stream":"s","feeds":%s}`, strings.TrimSuffix(strings.TrimPrefix(want(next), `{"s":`), "}"))
		answered := make(chan bool, 1)
		go func() {
			r, _ := testutil.TryDo(testutil.Req{Method: "POST", URL: "http://" + addr + "/api/streams", Body: body})
			answered <- r.Status == 200
		}()
		time.AfterFunc(time.Duration(rng.Int63n(int64(window))), p.kill)
		if <-answered {
			gen = next
			landed++
		} else {
			cut++
		}
		<-p.Done()
	}
	t.Logf("%d changes answered before the kill, %d cut by it (kills within %v)", landed, cut, window)
	if cut == 0 || landed == 0 {
		t.Fatalf("the kills never fell %s a change: the test did not test", map[bool]string{true: "inside", false: "outside"}[cut == 0])
	}
	aside, _ := filepath.Glob(state + ".bad-*")
	if len(aside) != 0 {
		sort.Strings(aside)
		t.Fatalf("a kill corrupted the state file: %v", aside)
	}
}
