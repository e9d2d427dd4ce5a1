package main

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/ts"
)

// wireRecorder stands where a relay's /in/ route would: it notes the size
// and arrival time of every binary message vw stream pushes to it.
type wireRecorder struct {
	upgrader websocket.Upgrader
	mu       sync.Mutex
	msgs     []wireMsg
}

type wireMsg struct {
	at   time.Time
	size int
	kind string
}

// kindOf names what a message carries: the start of a video frame, of an
// audio frame, or neither (PSI). One message is one feed's write.
func kindOf(b []byte) string {
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		if k := pesKind(b[i : i+ts.PacketSize]); k != "" {
			return k
		}
	}
	return "PSI"
}

func (rec *wireRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := rec.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		mt, b, err := c.ReadMessage()
		if err != nil {
			return
		}
		if mt != websocket.BinaryMessage {
			continue
		}
		rec.mu.Lock()
		rec.msgs = append(rec.msgs, wireMsg{at: time.Now(), size: len(b), kind: kindOf(b)})
		rec.mu.Unlock()
	}
}

func (rec *wireRecorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.msgs)
}

// window returns the sizes of the messages that arrived in [from, to).
func (rec *wireRecorder) window(from, to time.Time) []wireMsg {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var msgs []wireMsg
	for _, m := range rec.msgs {
		if !m.at.Before(from) && m.at.Before(to) {
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// TestWireMessages measures what vw stream really sends a relay for the
// README's camera and microphone feeds (1 Mbit/s MPEG-1 and 64 kbit/s MP2,
// 640x480 at 25 fps) combined by a stream rule, over 10 s, and checks that
// fanout's "vw stream" load (vwStreamSecond) still matches it: messages a
// second within 15%, bytes a second within 20%, the same median size and a
// 90th percentile within 25%. The camera's stand-in gets sensor-like noise
// so that the encoder spends its 1 Mbit/s as it would on a camera.
func TestWireMessages(t *testing.T) {
	testutil.NeedTool(t, "ffmpeg")
	vw := buildVW(t)
	ctx := testutil.Context(t, 2*time.Minute)
	rec := &wireRecorder{}
	relay := httptest.NewServer(rec)
	defer relay.Close()
	stream, err := startVW(ctx, vw, "", "stream", "VW_STATE=off")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.stop()
	r := &rig{stream: stream}
	if _, err := r.post("/api/streams", `{"stream":"wire","feeds":["video0","audio0"]}`); err != nil {
		t.Fatal(err)
	}
	if _, err := r.post("/api/destinations", `{"stream":"wire","destination":"ws://`+relay.Listener.Addr().String()+`/in/wire","id":"wire"}`); err != nil {
		t.Fatal(err)
	}
	base := "http://" + stream.addr + "/ts/"
	testutil.StartFeed(t, testutil.Feed{Video: true, Size: "640x480", Out: base + "video0", Extra: []string{"-vf", "noise=alls=16:allf=t+u"}})
	testutil.StartFeed(t, testutil.Feed{Audio: true, Out: base + "audio0"})
	testutil.Eventually(t, 20*time.Second, func() bool { return rec.count() > 0 }, "no message from vw stream")
	// The window starts once both feeds are in the stream: the muxer
	// joins the video at a keyframe, one a second.
	if err := sleep(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	from := time.Now()
	if err := sleep(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	got := summarize(rec.window(from, time.Now()), time.Since(from))
	t.Logf("vw stream sent %.1f messages/s, %.2f Mbit/s; sizes p50 %d, p75 %d, p90 %d, p99 %d, max %d bytes",
		got.perSec, got.bytesPerSec*8/1e6, got.sizes[50], got.sizes[75], got.sizes[90], got.sizes[99], got.sizes[100])
	for _, k := range got.kinds {
		t.Log("  " + k)
	}
	want := streamLoad()
	within := func(got, want, tol float64) bool { return got >= want*(1-tol) && got <= want*(1+tol) }
	if !within(got.perSec, want.msgsPerSec(), 0.15) || !within(got.bytesPerSec, want.bytesPerSec(), 0.20) ||
		got.sizes[50] != want.sizePercentile(50) || !within(float64(got.sizes[90]), float64(want.sizePercentile(90)), 0.25) {
		t.Errorf("fanout's vw stream load no longer matches what vw stream sends: it has %.1f messages/s, %.0f bytes/s, p50 %d, p90 %d bytes; update vwStreamSecond",
			want.msgsPerSec(), want.bytesPerSec(), want.sizePercentile(50), want.sizePercentile(90))
	}
}

// wireSummary is what a relay received over a window.
type wireSummary struct {
	perSec, bytesPerSec float64
	sizes               map[int]int // percentile → bytes
	kinds               []string    // a line per kind of message
}

func summarize(msgs []wireMsg, d time.Duration) wireSummary {
	s := wireSummary{perSec: float64(len(msgs)) / d.Seconds(), sizes: map[int]int{}}
	var sizes []int
	byKind := map[string][]int{}
	for _, m := range msgs {
		sizes = append(sizes, m.size)
		s.bytesPerSec += float64(m.size) / d.Seconds()
		byKind[m.kind] = append(byKind[m.kind], m.size/ts.PacketSize)
	}
	if len(sizes) == 0 {
		return s
	}
	slices.Sort(sizes)
	for _, p := range []int{50, 75, 90, 99, 100} {
		s.sizes[p] = sizes[(len(sizes)-1)*p/100]
	}
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		v := byKind[k]
		slices.Sort(v)
		s.kinds = append(s.kinds, fmt.Sprintf("%s: %.1f/s, packets min %d, p50 %d, p90 %d, max %d",
			k, float64(len(v))/d.Seconds(), v[0], v[len(v)/2], v[len(v)*9/10], v[len(v)-1]))
	}
	return s
}
