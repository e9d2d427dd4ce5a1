package crossbar

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/scrape"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// feedGen is a synthetic MPEG-1 video feed for the keyframe cache tests:
// ffmpeg's packet layout and PSI, a keyframe (sequence header first) every
// KeyEvery frames, and every video packet stamped with its index in the
// stream in its last four bytes, where no header lies, so that no two
// packets are alike and a gap or a repeat shows.
type feedGen struct {
	s    *tscheck.Synth
	data []byte // everything generated so far
	keys []int  // byte offsets in data where a keyframe's PES starts
	n    uint32 // video packets so far
}

func newFeedGen(keyEvery int) *feedGen {
	s := tscheck.NewSynth(true, 90000)
	s.KeyEvery = keyEvery
	return &feedGen{s: s}
}

// frames generates the next n frames (with PSI when due) and returns their
// bytes.
func (g *feedGen) frames(n int) []byte {
	start := len(g.data)
	g.data = g.s.Append(g.data, n)
	for i := start; i < len(g.data); i += ts.PacketSize {
		p := g.data[i : i+ts.PacketSize]
		if ts.PID(p) != 0x100 {
			continue
		}
		if off, _ := ts.PayloadOffset(p); ts.PayloadUnitStart(p) && bytes.HasPrefix(p[off+14:], []byte{0, 0, 1, 0xb3}) {
			g.keys = append(g.keys, i)
		}
		if off, _ := ts.PayloadOffset(p); off <= ts.PacketSize-64 {
			binary.BigEndian.PutUint32(p[ts.PacketSize-4:], g.n)
		}
		g.n++
	}
	return g.data[start:]
}

// lastKey returns the offset of the latest keyframe before end.
func (g *feedGen) lastKey(end int) int {
	k := -1
	for _, o := range g.keys {
		if o+ts.PacketSize <= end {
			k = o
		}
	}
	return k
}

// publish sends b in messages of chunk bytes.
func publish(t testing.TB, pub *websocket.Conn, b []byte, chunk int) {
	t.Helper()
	for len(b) > 0 {
		k := min(chunk, len(b))
		send(t, pub, websocket.BinaryMessage, b[:k])
		b = b[k:]
	}
}

// readN reads messages until it has n bytes, and fails on more.
func readN(t testing.TB, c *websocket.Conn, n int) []byte {
	t.Helper()
	var got []byte
	for len(got) < n {
		_, b := read(t, c)
		got = append(got, b...)
	}
	if len(got) != n {
		t.Fatalf("read %d bytes, want %d: a message ran past what was sent", len(got), n)
	}
	return got
}

// isPSI reports whether b is a PAT then a PMT packet (ffmpeg's PIDs).
func isPSI(b []byte) bool {
	return len(b) == 2*ts.PacketSize && ts.PID(b) == ts.PIDPAT && ts.PID(b[ts.PacketSize:]) == 0x1000
}

// TestCacheStartsAtKeyframe checks what a viewer joining a running stream
// gets: the PAT/PMT, then the stream from the first byte of the latest
// keyframe's PES, then the live stream, with not a byte missing or
// repeated at the seam, however the publisher cuts its messages (the
// keyframe at a message's start, inside one, or inside a packet). A viewer
// there from the start gets the stream as sent, and no replay.
func TestCacheStartsAtKeyframe(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chunk int
	}{
		{"whole packets", 7 * ts.PacketSize},
		{"big messages", 40 * ts.PacketSize},
		{"cut anywhere", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRelay(t, Config{})
			pub := r.dial(t, "/in/cam")
			early := r.dial(t, "/out/cam")
			r.waitClients(t, "/out/cam", 1, 1, 0)

			g := newFeedGen(10)
			sent := g.frames(25) // keyframes at frames 0, 10 and 20
			publish(t, pub, sent, tc.chunk)
			if got := readN(t, early, len(sent)); !bytes.Equal(got, sent) {
				t.Fatal("the viewer there from the start did not get the stream as sent")
			}
			key := g.lastKey(len(g.data))
			if key < 0 || len(g.keys) != 3 {
				t.Fatalf("the feed has keyframes at %v", g.keys)
			}

			late := r.dial(t, "/out/cam")
			r.waitClients(t, "/out/cam", 1, 2, 0)
			if _, psi := read(t, late); !isPSI(psi) {
				t.Fatalf("the late viewer's first message is %d bytes (PIDs %v), want the PAT and PMT", len(psi), pids(psi))
			}
			if got := readN(t, late, len(g.data)-key); !bytes.Equal(got, g.data[key:]) {
				t.Fatalf("the late viewer's replay is not the stream from its latest keyframe (byte %d) on", key)
			}
			st := r.topic("/out/cam")
			if st.KeyframeAgeMs == nil || st.CacheBytes < uint64(len(g.data)-key) {
				t.Fatalf("stats: %d bytes cached, keyframe age %v; want the GOP's %d bytes and an age", st.CacheBytes, st.KeyframeAgeMs, len(g.data)-key)
			}
			// /metrics reports the same bytes, for the stream and the relay.
			m := scrape.Get(t, r.http.URL+"/metrics", nil)
			if got, all := m.Value(t, "vw_relay_topic_cache_bytes", "topic", "/out/cam"), m.Value(t, "vw_relay_cache_bytes"); got != float64(st.CacheBytes) || all != got {
				t.Fatalf("/metrics: %v bytes cached for the stream, %v in all; /stats says %d", got, all, st.CacheBytes)
			}

			more := g.frames(3)
			publish(t, pub, more, tc.chunk)
			for name, v := range map[string]*websocket.Conn{"early": early, "late": late} {
				if got := readN(t, v, len(more)); !bytes.Equal(got, more) {
					t.Fatalf("the %s viewer's live stream after the seam is not what was sent", name)
				}
			}
		})
	}
}

// TestCacheSeamUnderLoad has viewers join while the publisher sends as fast
// as it can: each one's stream, after the PAT/PMT, must be the published
// stream from one of its keyframes to the end, without a gap or a repeat
// wherever the seam between replay and live fell. (A stream sent faster
// than viewers read is behind for them: the delay bound is off here, so
// that they get every byte.)
func TestCacheSeamUnderLoad(t *testing.T) {
	const joiners = 16
	r := startRelay(t, Config{Queue: 1 << 16, QueueBytes: 1 << 30, MaxDelay: -1})
	pub := r.dial(t, "/in/cam")
	g := newFeedGen(10)
	data := g.frames(300)

	type result struct {
		i   int
		got []byte
		err error
	}
	results := make(chan result, joiners)
	var wg sync.WaitGroup
	join := func(i int) {
		defer wg.Done()
		c, err := r.dialErr("/out/cam", nil)
		if err != nil {
			results <- result{i: i, err: err}
			return
		}
		defer c.Close()
		var got []byte
		for {
			mt, b, err := c.ReadMessage()
			if err != nil {
				results <- result{i: i, err: err}
				return
			}
			if mt == websocket.TextMessage {
				break // the end
			}
			got = append(got, b...)
		}
		results <- result{i: i, got: got}
	}
	const chunk = 7 * ts.PacketSize
	msgs := (len(data) + chunk - 1) / chunk
	for m := 0; m < msgs; m++ {
		if m%(msgs/joiners) == msgs/joiners/2 && m/(msgs/joiners) < joiners {
			wg.Add(1)
			go join(m / (msgs / joiners))
		}
		send(t, pub, websocket.BinaryMessage, data[m*chunk:min((m+1)*chunk, len(data))])
	}
	// Every joiner must have joined before the end marker goes.
	r.waitClients(t, "/out/cam", 1, joiners, 0)
	send(t, pub, websocket.TextMessage, []byte("end"))
	wg.Wait()
	close(results)
	replays := 0
	for res := range results {
		if res.err != nil {
			t.Errorf("joiner %d: %v", res.i, res.err)
			continue
		}
		got := res.got
		if isPSI(got[:min(len(got), 2*ts.PacketSize)]) {
			got = got[2*ts.PacketSize:]
		}
		from := len(data) - len(got)
		if from < 0 || !bytes.Equal(got, data[from:]) {
			t.Errorf("joiner %d: its %d bytes after the PAT/PMT are not the stream's end", res.i, len(got))
			continue
		}
		if from > 0 {
			replays++
			if !slices.Contains(g.keys, from) {
				t.Errorf("joiner %d: its stream starts at byte %d, not at a keyframe", res.i, from)
			}
		}
	}
	if replays == 0 {
		t.Error("no joiner got a replay")
	}
}

// TestCacheBounded checks the bounds: a GOP that outgrows the cache is
// dropped whole (a viewer then gets only the PAT/PMT and the live stream,
// never a GOP cut at the front), the cache serves again from the next
// keyframe, and the caches of all streams together stay under their total.
func TestCacheBounded(t *testing.T) {
	// Frames are 2.6 KiB. The total is below the per-topic bound, so that a
	// second stream meets the total before its own bound.
	const limit, total = 16 << 10, 12 << 10
	r := startRelay(t, Config{CacheBytes: limit, CacheTotalBytes: total})
	pub := r.dial(t, "/in/cam")
	early := r.dial(t, "/out/cam")
	r.waitClients(t, "/out/cam", 1, 1, 0)
	g := newFeedGen(10)
	chunk := 7 * ts.PacketSize
	// step publishes frames and waits until the early viewer has them, so
	// that the relay has taken them in.
	step := func(n int) []byte {
		b := g.frames(n)
		publish(t, pub, b, chunk)
		readN(t, early, len(b))
		if st := r.topic("/out/cam"); st.CacheBytes > limit {
			t.Fatalf("the cache holds %d bytes, over its %d", st.CacheBytes, limit)
		}
		return b
	}
	lateGets := func(what string) []byte {
		t.Helper()
		v := r.dial(t, "/out/cam")
		r.waitClients(t, "/out/cam", 1, 2, 0)
		defer func() {
			_ = v.Close()
			r.waitClients(t, "/out/cam", 1, 1, 0)
		}()
		if _, psi := read(t, v); !isPSI(psi) {
			t.Fatalf("%s: first message of %d bytes, want the PAT/PMT", what, len(psi))
		}
		b := g.frames(1)
		publish(t, pub, b, len(b))
		readN(t, early, len(b))
		_, got := read(t, v)
		return got
	}

	step(4) // a keyframe and three frames: about 10.5 KiB
	if st := r.topic("/out/cam"); st.KeyframeAgeMs == nil {
		t.Fatal("no keyframe cached for a GOP well under the bound")
	}
	key := g.keys[0]
	if got := lateGets("within the bound"); !bytes.Equal(got, g.data[key:key+len(got)]) {
		t.Fatal("a viewer joining within the bound did not get the GOP first")
	}
	step(4) // 9 frames now: about 23 KiB
	st := r.topic("/out/cam")
	if st.KeyframeAgeMs != nil {
		t.Fatalf("a GOP over the bound is still cached (%d bytes)", st.CacheBytes)
	}
	live := len(g.data)
	if got := lateGets("over the bound"); !bytes.Equal(got, g.data[live:live+len(got)]) {
		t.Fatal("a viewer joining over the bound got something other than the live stream after the PAT/PMT")
	}
	step(2) // the next keyframe, and a frame
	key = g.lastKey(len(g.data))
	if got := lateGets("after the next keyframe"); !bytes.Equal(got, g.data[key:key+len(got)]) {
		t.Fatal("after the next keyframe the cache did not start again there")
	}

	// A second stream whose GOP fits its own bound but not the total
	// beside the first's (two frames, about 5.3 KiB): it goes without, and
	// the total holds.
	pub2 := r.dial(t, "/in/cam2")
	early2 := r.dial(t, "/out/cam2")
	r.waitClients(t, "/out/cam2", 1, 1, 0)
	g2 := newFeedGen(100)
	g2.s.FrameSize = 1000
	b := g2.frames(8) // about 9 KiB
	publish(t, pub2, b, chunk)
	readN(t, early2, len(b))
	a, c := r.topic("/out/cam"), r.topic("/out/cam2")
	if a.CacheBytes+c.CacheBytes > total {
		t.Fatalf("the caches hold %d + %d bytes, over their total", a.CacheBytes, c.CacheBytes)
	}
	if a.KeyframeAgeMs == nil || c.KeyframeAgeMs != nil {
		t.Fatalf("want the first stream's GOP cached and not the second's: %v, %v", a.KeyframeAgeMs, c.KeyframeAgeMs)
	}
}

// TestCacheRestarts checks that what a viewer is replayed always belongs to
// the stream in force: after a new PMT version (a mute) the cache holds
// only the PAT/PMT until the next keyframe, and the same after a new
// publisher (a destination swapped); when the last publisher leaves it
// holds nothing.
func TestCacheRestarts(t *testing.T) {
	r := startRelay(t, Config{})
	pub := r.dial(t, "/in/cam")
	early := r.dial(t, "/out/cam")
	r.waitClients(t, "/out/cam", 1, 1, 0)
	g := newFeedGen(10)
	chunk := 7 * ts.PacketSize
	sendFrames := func(pub *websocket.Conn, g *feedGen, n int) {
		b := g.frames(n)
		publish(t, pub, b, chunk)
		readN(t, early, len(b))
	}
	cached := func() bool { return r.topic("/out/cam").KeyframeAgeMs != nil }

	sendFrames(pub, g, 4)
	if !cached() {
		t.Fatal("no GOP cached")
	}
	g.s.PMTVersion = 1
	sendFrames(pub, g, 4) // a PAT/PMT goes out every third frame
	if cached() {
		t.Fatal("the GOP from before the new PMT version is still cached")
	}
	sendFrames(pub, g, 3) // the next keyframe (frame 10)
	if !cached() {
		t.Fatal("the cache did not start again at the keyframe after the new PMT")
	}

	// Make before break: a new publisher joins, the old one leaves.
	pub2 := r.dial(t, "/in/cam")
	r.waitClients(t, "/out/cam", 2, 1, 0)
	g2 := newFeedGen(10)
	g2.frames(5) // a stream that began elsewhere: no keyframe in what follows
	sendFrames(pub2, g2, 3)
	if cached() {
		t.Fatal("the old publisher's GOP is still cached after a new publisher's stream")
	}
	_ = pub.Close()
	r.waitClients(t, "/out/cam", 1, 1, 0)
	sendFrames(pub2, g2, 3)
	if !cached() {
		t.Fatal("the new publisher's keyframe did not start the cache")
	}

	_ = pub2.Close()
	r.waitClients(t, "/out/cam", 0, 1, 0)
	if st := r.topic("/out/cam"); st.CacheBytes != 0 || st.KeyframeAgeMs != nil {
		t.Fatalf("with no publisher the cache holds %d bytes (keyframe age %v)", st.CacheBytes, st.KeyframeAgeMs)
	}
	v := r.dial(t, "/out/cam")
	r.waitClients(t, "/out/cam", 0, 2, 0)
	pub3 := r.dial(t, "/in/cam")
	r.waitClients(t, "/out/cam", 1, 2, 0)
	first := []byte(fmt.Sprint("a stream starting afresh"))
	send(t, pub3, websocket.BinaryMessage, first)
	if _, got := read(t, v); !bytes.Equal(got, first) {
		t.Fatalf("a viewer waiting for a stream to return got %d bytes first, want the stream's first message", len(got))
	}
}

// TestCacheLetsGoWithItsTopic checks the accounting where a topic goes
// away with its cache full, as a stream rule deleted on vw stream does:
// the cache's bytes leave the total, or the caches of the streams that
// follow would find it used up.
func TestCacheLetsGoWithItsTopic(t *testing.T) {
	b := newCacheBudget(0, 0)
	h := hub.New()
	h.KeepWith(b.keepers(nil))
	pub := h.Join("stream/front")
	data := newFeedGen(10).frames(5)
	for i := 0; i < len(data); i += 7 * ts.PacketSize {
		pub.Publish(&hub.Message{Data: data[i:min(i+7*ts.PacketSize, len(data))]})
	}
	if b.used.Load() == 0 {
		t.Fatal("nothing cached")
	}
	pub.Leave()
	if n := b.used.Load(); n != 0 {
		t.Fatalf("with the topic gone the caches still count %d bytes", n)
	}
}

// FuzzKeyframeCache feeds any bytes, cut into messages of any size, to a
// keyframe cache: nothing panics; what it would replay after the PAT/PMT is
// the end of what it was given, from the first byte of a packet; it never
// counts more than its bound; and once reset it accounts for nothing.
func FuzzKeyframeCache(f *testing.F) {
	g := newFeedGen(3)
	seed := g.frames(8)
	f.Add(seed, uint16(7*ts.PacketSize), uint32(64<<10))
	f.Add(seed, uint16(1000), uint32(6<<10))
	f.Add(seed[5:], uint16(188), uint32(1))
	f.Add([]byte("not a transport stream"), uint16(3), uint32(0))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint16, limit uint32) {
		b := newCacheBudget(int64(limit%(256<<10)), 0)
		c := newKeyframeCache(b, time.Now)
		step := max(int(chunk), 1, len(stream)/256) // at most 256 messages: quick runs
		for i := 0; i < len(stream); i += step {
			c.Keep(&hub.Message{Data: bytes.Clone(stream[i:min(i+step, len(stream))]), From: 1})
			if c.bytes > b.perTopic && c.gop {
				t.Fatalf("a GOP of %d bytes cached over the bound of %d", c.bytes, b.perTopic)
			}
		}
		replay := c.Replay(nil)
		if psi := c.psi.message(); psi != nil {
			if len(replay) == 0 || replay[0] != psi {
				t.Fatal("the PAT/PMT do not come first")
			}
			replay = replay[1:]
		}
		var gop []byte
		for _, m := range replay {
			gop = append(gop, m.Data...)
		}
		if !bytes.HasSuffix(stream, gop) {
			t.Fatalf("the %d bytes replayed are not the end of the stream", len(gop))
		}
		if len(gop) > 0 && gop[0] != ts.SyncByte {
			t.Fatal("the replay does not start at a packet")
		}
		c.reset()
		if c.bytes != 0 || b.used.Load() != 0 || c.Replay(nil) != nil {
			t.Fatalf("after a reset the cache holds %d bytes (budget %d)", c.bytes, b.used.Load())
		}
	})
}
