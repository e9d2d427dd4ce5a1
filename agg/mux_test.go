package agg

import (
	"bytes"
	"math/rand"
	"testing"
	"time"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// rig drives a mux directly on a simulated clock: deterministic, no
// goroutines, no ffmpeg.
type rig struct {
	t     testing.TB
	m     *mux
	clock *testutil.Clock
	out   []byte
	msgs  int
	// psiAt records the simulated time of every message that starts with
	// a PAT.
	psiAt []time.Duration
	start time.Time
	feeds map[string]*feed
	from  map[string]uint64
}

func newRig(t testing.TB, cfg Config, names ...string) *rig {
	r := &rig{t: t, clock: testutil.NewClock(time.Unix(1000, 0)), feeds: map[string]*feed{}, from: map[string]uint64{}}
	r.start = r.clock.Now()
	r.m = newMux(withDefaults(t, cfg), testutil.Log(t), func(msg *hub.Message) {
		if len(msg.Data)%ts.PacketSize != 0 {
			t.Fatalf("output message of %d bytes", len(msg.Data))
		}
		for i := 0; i < len(msg.Data); i += ts.PacketSize {
			if ts.PID(msg.Data[i:]) == ts.PIDPAT {
				r.psiAt = append(r.psiAt, r.clock.Now().Sub(r.start))
				break
			}
		}
		r.out = append(r.out, msg.Data...)
		r.msgs++
	})
	r.set(names...)
	return r
}

func (r *rig) set(names ...string) {
	for _, f := range r.m.setFeeds(names, r.clock.Now()) {
		r.feeds[f.name] = f
		if r.from[f.name] == 0 {
			r.from[f.name] = uint64(len(r.from) + 1)
		}
	}
}

// send delivers one message of feed name at the current time.
func (r *rig) send(name string, data []byte) {
	f := r.feeds[name]
	r.m.input(f, &hub.Message{Data: data, From: r.from[name]}, r.clock.Now())
}

// advance moves the clock, running tick at every deadline on the way. A
// tick that leaves its own deadline in the past would make the stream's
// goroutine spin: that fails the test.
func (r *rig) advance(d time.Duration) {
	end := r.clock.Now().Add(d)
	for {
		now, dl := r.clock.Now(), r.m.deadline()
		if dl.IsZero() || dl.After(end) {
			break
		}
		if dl.After(now) {
			r.clock.Advance(dl.Sub(now))
			now = dl
		}
		r.m.tick(now)
		if next := r.m.deadline(); !next.IsZero() && !next.After(now) {
			r.t.Fatalf("tick at %v left the deadline at %v: the muxer would spin", now.Sub(r.start), next.Sub(r.start))
		}
	}
	r.clock.Advance(end.Sub(r.clock.Now()))
}

// play runs video and audio synth feeds for dur on the simulated clock,
// each frame sent as one message when it is due. A nil synth is silent.
func (r *rig) play(dur time.Duration, feeds map[string]*tscheck.Synth) {
	type next struct{ at time.Duration }
	due := map[string]time.Duration{}
	step := 5 * time.Millisecond
	for el := time.Duration(0); el < dur; el += step {
		for name, s := range feeds {
			if s == nil {
				continue
			}
			frame := time.Duration(s.Frame()) * time.Second / 90000
			for due[name] <= el {
				r.send(name, s.Append(nil, 1))
				due[name] += frame
			}
		}
		r.advance(step)
	}
}

func TestMuxTwoFeeds(t *testing.T) {
	r := newRig(t, Config{}, "video0", "audio0")
	video := tscheck.NewSynth(true, 126000)
	audio := tscheck.NewSynth(false, 5_000_000_000) // a very different clock
	r.play(time.Second, map[string]*tscheck.Synth{"video0": video})
	r.play(2*time.Second, map[string]*tscheck.Synth{"video0": video, "audio0": audio})

	rep := tscheck.Walk(r.out)
	if rep.Malformed > 0 || len(rep.CCErrors) > 0 || rep.BadPSI > 0 || rep.Unlisted > 0 {
		t.Fatalf("output: %d malformed, CC errors %v, %d bad PSI, %d unlisted packets", rep.Malformed, rep.CCErrors, rep.BadPSI, rep.Unlisted)
	}
	v, a := rep.Kind(true), rep.Kind(false)
	if len(v) != 1 || len(a) != 1 || v[0].PID == a[0].PID {
		t.Fatalf("want one video and one audio PID, got %d and %d", len(v), len(a))
	}
	if !bytes.Equal(v[0].StreamIDs, []byte{0xe0}) || !bytes.Equal(a[0].StreamIDs, []byte{0xc0}) || a[0].CutPES > 0 {
		t.Fatalf("stream ids video % x audio % x, cut audio PES %d", v[0].StreamIDs, a[0].StreamIDs, a[0].CutPES)
	}
	if ts.PID(r.out) != ts.PIDPAT {
		t.Fatal("the output does not start with a PAT")
	}
	if len(rep.PMTVersions) != 2 || rep.PCRPIDs[len(rep.PCRPIDs)-1] != v[0].PID {
		t.Fatalf("PMT versions %v (want one for video, one when audio joined), PCR PIDs %v", rep.PMTVersions, rep.PCRPIDs)
	}
	if got := r.m.counts.pmtVersions.Load(); got != uint64(len(rep.PMTVersions)) {
		t.Fatalf("the muxer counted %d PMT versions; %d went out", got, len(rep.PMTVersions))
	}
	for i := 1; i < len(r.psiAt); i++ {
		if gap := r.psiAt[i] - r.psiAt[i-1]; gap > 100*time.Millisecond {
			t.Fatalf("PSI gap of %v at %v", gap, r.psiAt[i])
		}
	}
	// Media that arrived together carries timestamps within 100 ms: the
	// first audio PES against the video PES next to it.
	first := a[0].PTS[0]
	var near tscheck.Stamp
	for _, s := range v[0].PTS {
		if s.Packet > first.Packet {
			break
		}
		near = s
	}
	if d := int64(first.Value) - int64(near.Value); d < -9000 || d > 9000 {
		t.Fatalf("audio PTS %d vs video PTS %d: %d ms apart", first.Value, near.Value, d/90)
	}
	if err := rep.PCRMonotonic(); err != nil {
		t.Fatal(err)
	}
}

// TestMuxRemoveAtPESBoundary removes the audio feed in the middle of one of
// its PES and checks that the PES is finished and nothing follows.
func TestMuxRemoveAtPESBoundary(t *testing.T) {
	r := newRig(t, Config{}, "video0", "audio0")
	video := tscheck.NewSynth(true, 0)
	audio := tscheck.NewSynth(false, 0)
	r.play(500*time.Millisecond, map[string]*tscheck.Synth{"video0": video, "audio0": audio})
	frame := audio.Append(nil, 1)
	r.send("audio0", frame[:ts.PacketSize]) // the first packet of a PES
	r.set("video0")
	if !r.m.draining() {
		t.Fatal("audio stopped mid-PES: the muxer did not wait for the PES to end")
	}
	before := len(r.out)
	r.send("audio0", frame[ts.PacketSize:])
	if r.m.draining() {
		t.Fatal("still draining after the PES ended")
	}
	mark := len(r.out)
	r.play(500*time.Millisecond, map[string]*tscheck.Synth{"video0": video, "audio0": audio})

	rep := tscheck.Walk(r.out)
	a := rep.Kind(false)
	if len(a) != 1 || a[0].CutPES > 0 || len(rep.CCErrors) > 0 {
		t.Fatalf("audio %+v, CC errors %v", a, rep.CCErrors)
	}
	if len(rep.PMTVersions) < 2 {
		t.Fatalf("PMT versions %v: no bump on removal", rep.PMTVersions)
	}
	if before == mark {
		t.Fatal("the rest of the PES was not forwarded")
	}
	for i := mark; i < len(r.out); i += ts.PacketSize {
		if ts.PID(r.out[i:]) == a[0].PID {
			t.Fatalf("audio packet at %d after the removal finished", (i-mark)/ts.PacketSize)
		}
	}
	// After it, every PMT lists the video alone, and the video carries on
	// with no gap: 13 frames in 500 ms, all but those before the first
	// PMT (at most 100 ms of them) on a PID it lists.
	after := tscheck.Walk(r.out[mark:])
	v := rep.Kind(true)
	if len(after.ES) != 1 || after.ES[v[0].PID] == nil || after.PMTs < 4 {
		t.Fatalf("after the removal: %d PMTs listing %d streams, want several listing the video (PID %#x) alone", after.PMTs, len(after.ES), v[0].PID)
	}
	if pes := after.ES[v[0].PID].PES; pes < 10 || after.Malformed > 0 || len(after.CCErrors) > 0 {
		t.Fatalf("after the removal: %d video PES (want 10 or more), %d malformed, CC errors %v", pes, after.Malformed, after.CCErrors)
	}
	// Unmute: the audio keeps its PID and joins at a PES start.
	r.set("video0", "audio0")
	r.play(300*time.Millisecond, map[string]*tscheck.Synth{"video0": video, "audio0": audio})
	rep = tscheck.Walk(r.out)
	if a2 := rep.Kind(false); len(a2) != 1 || a2[0].PID != a[0].PID || a2[0].CutPES > 0 || len(rep.CCErrors) > 0 {
		t.Fatalf("after unmute: audio %+v (was PID %#x), CC errors %v", a2, a[0].PID, rep.CCErrors)
	}
}

func TestMuxFeedWithoutPMT(t *testing.T) {
	r := newRig(t, Config{}, "video0", "audio0")
	video := tscheck.NewSynth(true, 0)
	audio := tscheck.NewSynth(false, 0)
	audio.NoPMT = true
	r.play(time.Second, map[string]*tscheck.Synth{"video0": video, "audio0": audio})
	rep := tscheck.Walk(r.out)
	a := rep.Kind(false)
	if len(a) != 1 || a[0].Type != 0x03 || a[0].PES < 30 || rep.Unlisted > 0 || len(rep.CCErrors) > 0 {
		t.Fatalf("audio without PMT: %+v, unlisted %d, CC errors %v", a, rep.Unlisted, rep.CCErrors)
	}
}

func TestMuxSecondAudio(t *testing.T) {
	r := newRig(t, Config{}, "video0", "audio0", "audio1")
	r.play(time.Second, map[string]*tscheck.Synth{
		"video0": tscheck.NewSynth(true, 0),
		"audio0": tscheck.NewSynth(false, 0),
		"audio1": tscheck.NewSynth(false, 0),
	})
	rep := tscheck.Walk(r.out)
	a := rep.Kind(false)
	// PIDs follow the order the feeds' PMTs arrived in, stream_ids the rule's
	// order, so which PID ends on 0xC1 varies: one must, the other 0xC0.
	last := func(e *tscheck.ES) byte {
		if len(e.StreamIDs) == 0 {
			return 0
		}
		return e.StreamIDs[len(e.StreamIDs)-1]
	}
	if len(a) != 2 || last(a[0])^last(a[1]) != 0xc0^0xc1 || min(last(a[0]), last(a[1])) != 0xc0 {
		t.Fatalf("two audio feeds: %+v %+v", a[0], a[1])
	}
}

func TestMuxRestartAndSilence(t *testing.T) {
	r := newRig(t, Config{Grace: 300 * time.Millisecond}, "video0", "audio0")
	video := tscheck.NewSynth(true, 0)
	r.play(time.Second, map[string]*tscheck.Synth{"video0": video, "audio0": tscheck.NewSynth(false, 0)})
	// audio0's ffmpeg restarts: a new connection, a new clock, CCs from 0.
	r.from["audio0"] = 99
	r.play(time.Second, map[string]*tscheck.Synth{"video0": video, "audio0": tscheck.NewSynth(false, 7_000_000)})
	// Then it stops: after the grace it leaves the PMT.
	r.play(time.Second, map[string]*tscheck.Synth{"video0": video})
	rep := tscheck.Walk(r.out)
	if len(rep.CCErrors) > 0 || rep.Malformed > 0 {
		t.Fatalf("CC errors %v, %d malformed", rep.CCErrors, rep.Malformed)
	}
	a := rep.Kind(false)
	if len(a) != 1 || a[0].CutPES > 0 {
		t.Fatalf("audio: %+v", a)
	}
	// The restarted clock was rebased: audio PTS go on with no jump.
	for i := 1; i < len(a[0].PTS); i++ {
		if d := int64(a[0].PTS[i].Value - a[0].PTS[i-1].Value); d < 0 || d > 9000 {
			t.Fatalf("audio PTS jump of %d ms at packet %d", d/90, a[0].PTS[i].Packet)
		}
	}
	// The last PMT lists the video only.
	var pmt ts.PMT
	lastPMT(t, r.out, &pmt)
	if len(pmt.Streams) != 1 || !ts.IsVideoType(pmt.Streams[0].Type) {
		t.Fatalf("last PMT %+v, want the video alone after audio went silent", pmt)
	}
	// It comes back.
	r.play(500*time.Millisecond, map[string]*tscheck.Synth{"video0": video, "audio0": tscheck.NewSynth(false, 0)})
	lastPMT(t, r.out, &pmt)
	if len(pmt.Streams) != 2 {
		t.Fatalf("last PMT %+v, want audio back", pmt)
	}
}

// TestMuxPSIDue checks when PAT and PMT go out: never before the first
// media packet, which they lead; alone and at once when the PMT changes;
// every PSIInterval while a feed is live, also between its PES; and no
// more once every feed has gone silent.
func TestMuxPSIDue(t *testing.T) {
	r := newRig(t, Config{}, "video0", "audio0")
	video := tscheck.NewSynth(true, 0)
	audio := tscheck.NewSynth(false, 0)
	frame := video.Append(nil, 1)
	if ts.PID(frame) != ts.PIDPAT || ts.PID(frame[ts.PacketSize:]) != 0x1000 {
		t.Fatal("the synth's first frame does not start with its PAT and PMT")
	}
	r.send("video0", frame[:2*ts.PacketSize]) // the feed's PSI, no media yet
	r.advance(300 * time.Millisecond)
	if r.msgs > 0 {
		t.Fatalf("%d messages before any media: PSI must not go out alone before the first media packet", r.msgs)
	}
	r.send("video0", frame[2*ts.PacketSize:])
	if len(r.out) < 3*ts.PacketSize || ts.PID(r.out) != ts.PIDPAT || ts.PID(r.out[ts.PacketSize:]) != outPMTPID {
		t.Fatalf("the first output (%d bytes) does not start with PAT and PMT", len(r.out))
	}
	r.play(500*time.Millisecond, map[string]*tscheck.Synth{"video0": video, "audio0": audio})

	// Mute between audio frames: the new PMT goes out alone, at once.
	mark, msgs := len(r.out), r.msgs
	var before ts.PMT
	lastPMT(t, r.out, &before)
	r.set("video0")
	var after ts.PMT
	lastPMT(t, r.out, &after)
	if r.msgs != msgs+1 || len(r.out)-mark != 2*ts.PacketSize || ts.PID(r.out[mark:]) != ts.PIDPAT {
		t.Fatalf("the mute published %d messages of %d bytes, want one PAT and PMT", r.msgs-msgs, len(r.out)-mark)
	}
	if len(after.Streams) != 1 || after.Version != uint8(ts.Version(before.Version).Next()) {
		t.Fatalf("PMT after the mute: version %d (was %d), %d streams; want the next version, video alone", after.Version, before.Version, len(after.Streams))
	}

	// The video sends one more frame and then nothing: PSI repeats on time
	// while it is live, goes out once more when it leaves the PMT at the
	// end of the grace period, and then stops.
	r.psiAt = r.psiAt[:0]
	sent := r.clock.Now().Sub(r.start)
	r.send("video0", video.Append(nil, 1))
	grace := DefaultConfig().Grace
	r.advance(grace + time.Second)
	interval := DefaultConfig().PSIInterval
	want := sent
	for i, at := range r.psiAt {
		if i > 0 && at-r.psiAt[i-1] > interval {
			t.Fatalf("PSI at %v after the last at %v: more than %v apart", at, r.psiAt[i-1], interval)
		}
		if at > want {
			want = at
		}
	}
	if want != sent+grace || len(r.psiAt) < int(grace/interval) {
		t.Fatalf("PSI at %v; want it every %v from %v to %v, when the video left the PMT, and never after", r.psiAt, interval, sent, sent+grace)
	}
	if d := r.m.deadline(); !d.IsZero() {
		t.Fatalf("nothing is live, yet the muxer wants a tick at %v", d.Sub(r.start))
	}
}

// lastPMT parses the last PMT in b.
func lastPMT(t testing.TB, b []byte, dst *ts.PMT) {
	t.Helper()
	for i := len(b) - ts.PacketSize; i >= 0; i -= ts.PacketSize {
		if ts.PID(b[i:]) == outPMTPID {
			s, _, err := ts.ParseSection(b[i+5 : i+ts.PacketSize])
			if err == nil && ts.ParsePMT(s, dst) == nil {
				return
			}
		}
	}
	t.Fatal("no PMT")
}

// TestMuxBadInput mixes every kind of broken packet into good feeds: the
// output must stay well formed and continuous.
func TestMuxBadInput(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	r := newRig(t, Config{}, "video0", "audio0")
	video := tscheck.NewSynth(true, 0)
	audio := tscheck.NewSynth(false, 0)
	bad := [][]byte{
		func() []byte { p := video.Append(nil, 1)[:ts.PacketSize]; p[4] = 190; return p }(),               // adaptation field too long
		func() []byte { p := audio.Append(nil, 1)[:ts.PacketSize]; p[3] &= 0xcf; return p }(),             // reserved adaptation control
		func() []byte { p := audio.Append(nil, 1)[:ts.PacketSize]; p[12], p[13] = 9, 9; return p }(),      // no PES start code
		func() []byte { p := video.Append(nil, 1)[:ts.PacketSize]; p[5] = 0xff; return p }(),              // flags beyond the field
		func() []byte { p := audio.Append(nil, 1)[:ts.PacketSize]; p[1] |= 0x80; return p }(),             // transport error
		func() []byte { p := audio.Append(nil, 1)[:ts.PacketSize]; p[4] = 182; p[3] |= 0x30; return p }(), // header cut short
		bytes.Repeat([]byte{ts.SyncByte}, ts.PacketSize),
		append([]byte{ts.SyncByte, 0x41, 0x00, 0x1f}, bytes.Repeat([]byte{0, 0, 1}, 61)...),
	}
	for range 200 {
		r.send("video0", video.Append(nil, 1))
		r.send("audio0", audio.Append(nil, 1))
		r.send([]string{"video0", "audio0"}[rng.Intn(2)], bad[rng.Intn(len(bad))])
		junk := make([]byte, ts.PacketSize*(1+rng.Intn(3))+rng.Intn(50))
		rng.Read(junk)
		for i := 0; i+ts.PacketSize <= len(junk); i += ts.PacketSize {
			junk[i] = ts.SyncByte
		}
		r.send("audio0", junk)
		r.advance(40 * time.Millisecond)
	}
	rep := tscheck.Walk(r.out)
	if rep.Malformed > 0 || len(rep.CCErrors) > 0 || rep.BadPSI > 0 {
		t.Fatalf("output: %d malformed, %d CC errors (%v), %d bad PSI", rep.Malformed, len(rep.CCErrors), rep.CCErrors, rep.BadPSI)
	}
	if v := rep.Kind(true); len(v) != 1 || v[0].PES < 100 {
		t.Fatalf("video: %+v", v)
	}
}

// TestMuxAllocs checks the per-packet path: one message's worth of packets
// muxed costs no allocation once the slabs are warm (a slab is amortised
// over many messages).
func TestMuxAllocs(t *testing.T) {
	r := newRig(t, Config{}, "video0", "audio0")
	r.m.publish = func(*hub.Message) {}
	video := tscheck.NewSynth(true, 0)
	audio := tscheck.NewSynth(false, 0)
	vin := video.Append(nil, 100)
	ain := audio.Append(nil, 100)
	vf, af := r.feeds["video0"], r.feeds["audio0"]
	run := func() {
		for i := 0; i < len(vin); i += 20 * ts.PacketSize {
			r.m.input(vf, &hub.Message{Data: vin[i:min(i+20*ts.PacketSize, len(vin))], From: 1}, r.clock.Now())
		}
		for i := 0; i < len(ain); i += 2 * ts.PacketSize {
			r.m.input(af, &hub.Message{Data: ain[i:min(i+2*ts.PacketSize, len(ain))], From: 2}, r.clock.Now())
		}
		r.clock.Advance(50 * time.Millisecond)
	}
	run()
	msgs := len(vin)/(20*ts.PacketSize) + len(ain)/(2*ts.PacketSize)
	allocs := testing.AllocsPerRun(20, run)
	// The hub.Message literals above are the test's; slabs come every
	// 64 messages or 64 KiB.
	if perMsg := allocs / float64(msgs); perMsg > 1.2 {
		t.Fatalf("%.2f allocations per message (%v per run of %d), want about one (the input message literal)", perMsg, allocs, msgs)
	}
}
