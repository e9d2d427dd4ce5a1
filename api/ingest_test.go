package api

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/ts"
)

// preview is a local websocket client of /ws/{stream}, collecting what it
// receives.
type preview struct {
	mu   sync.Mutex
	msgs [][]byte
	done chan struct{}
}

func (f *fixture) preview(t *testing.T, stream string) *preview {
	t.Helper()
	u := "ws" + strings.TrimPrefix(f.url, "http") + "/ws/" + stream
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &preview{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.msgs = append(p.msgs, b)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-p.done
	})
	// The subscription exists once the handshake is done, but the handler
	// subscribes after upgrading: wait for it to show in the hub.
	testutil.Eventually(t, 2*time.Second, func() bool {
		for _, st := range f.hub.Stats() {
			if strings.HasSuffix(st.Name, "/"+stream) && st.Subscribers > 0 {
				return true
			}
		}
		return false
	}, "preview of %s not subscribed", stream)
	return p
}

func (p *preview) bytes() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Join(p.msgs, nil)
}

func (p *preview) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.msgs)
}

// checkWholePackets fails unless every message is whole, sync-aligned packets.
func (p *preview) checkWholePackets(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, m := range p.msgs {
		if len(m) == 0 || len(m)%ts.PacketSize != 0 {
			t.Fatalf("message %d is %d bytes: not whole packets", i, len(m))
		}
		for j := 0; j < len(m); j += ts.PacketSize {
			if m[j] != ts.SyncByte {
				t.Fatalf("message %d packet %d has no sync byte", i, j/ts.PacketSize)
			}
		}
	}
}

// ffmpegFeed starts the README's camera feed POSTing a test pattern to url
// for the given seconds, or until stopped if seconds is 0.
func ffmpegFeed(t *testing.T, url string, seconds int) *testutil.Proc {
	t.Helper()
	f := testutil.Feed{Video: true, Out: url}
	if seconds > 0 {
		f.Extra = []string{"-t", strconv.Itoa(seconds)}
	}
	return testutil.StartFeed(t, f)
}

// TestIngestFFmpeg posts a real ffmpeg feed and checks what a local preview
// sees: whole packets only, arriving while ffmpeg runs, that ffprobe reads
// as the mpeg1video ffmpeg sent.
func TestIngestFFmpeg(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	p := f.preview(t, "video0")
	// A feed that runs until it is stopped: data must flow while ffmpeg
	// sends, since the body ends only when the test says so. (ffmpeg stays
	// alive after its body ends, waiting for the answer, so a feed that
	// ends by itself could not tell a live ingest from one that waits for
	// the end.)
	cmd := ffmpegFeed(t, f.url+"/ts/video0", 0)
	testutil.Eventually(t, 10*time.Second, func() bool { return p.count() >= 5 }, "no data from a live feed")
	if !cmd.Alive() {
		t.Fatalf("ffmpeg ended before data arrived: %v\n%s", cmd.Err(), cmd.Output())
	}
	// Ctrl-C: ffmpeg finishes its stream and ends the POST.
	_ = cmd.Signal(syscall.SIGINT)
	_ = cmd.Wait(t, 10*time.Second)
	p.checkWholePackets(t)

	probe := testutil.NeedTool(t, "ffprobe")
	file := filepath.Join(t.TempDir(), "preview.ts")
	if err := os.WriteFile(file, p.bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(probe, "-v", "error", "-show_entries", "stream=codec_name", "-of", "json", file).Output()
	var got struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
		}
	}
	if err == nil {
		err = json.Unmarshal(out, &got)
	}
	if err != nil || len(got.Streams) != 1 || got.Streams[0].CodecName != "mpeg1video" {
		t.Fatalf("ffprobe of the preview: %s, %v", out, err)
	}
}

// poster is a client POSTing a feed by hand, one write at a time.
type poster struct {
	w    *io.PipeWriter
	done chan error
}

func (f *fixture) post(t *testing.T, feed string) *poster {
	t.Helper()
	r, w := io.Pipe()
	req, err := http.NewRequestWithContext(testutil.Context(t, 30*time.Second), "POST", f.url+"/ts/"+feed, r)
	if err != nil {
		t.Fatal(err)
	}
	p := &poster{w: w, done: make(chan error, 1)}
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		p.done <- err
	}()
	t.Cleanup(func() { w.Close() })
	return p
}

// reach writes ten packets of b and waits until p shows them: the feed is
// live from the POST to the preview.
func (po *poster) reach(t *testing.T, p *preview, b byte, msg string) {
	t.Helper()
	if _, err := po.w.Write(packetsOf(b, 10)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, func() bool { return bytes.Contains(p.bytes(), bytes.Repeat([]byte{b}, 4)) }, msg)
}

// packetsOf returns n packets whose payload bytes are all b.
func packetsOf(b byte, n int) []byte {
	out := make([]byte, 0, n*ts.PacketSize)
	for i := range n {
		p := bytes.Repeat([]byte{b}, ts.PacketSize)
		p[0], p[1], p[2], p[3] = ts.SyncByte, 0x01, 0x00, 0x10|byte(i&0xf)
		out = append(out, p...)
	}
	return out
}

// TestIngestReplace checks that a second POST to a live feed takes over
// cleanly: the first connection is closed and nothing it sends afterwards
// reaches the feed, so the two never interleave.
func TestIngestReplace(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	p := f.preview(t, "cam")
	first := f.post(t, "cam")
	first.reach(t, p, 'A', "first feed's data did not arrive")

	second := f.post(t, "cam")
	second.reach(t, p, 'B', "second feed's data did not arrive")
	select {
	case <-first.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced POST was not ended")
	}
	_, _ = first.w.Write(packetsOf('A', 10)) // too late: must go nowhere
	second.reach(t, p, 'C', "second feed stalled")
	got := p.bytes()
	lastA := bytes.LastIndex(got, []byte("AAAA"))
	firstB := bytes.Index(got, []byte("BBBB"))
	if lastA > firstB {
		t.Fatal("the first feed's data arrived after the second feed took over")
	}
	p.checkWholePackets(t)
}

// TestIngestGarbage posts garbage, and garbage mixed with packets cut at odd
// places, while a real ffmpeg feed runs: the garbage feed yields only whole
// packets, and the real feed carries on.
func TestIngestGarbage(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	video := f.preview(t, "video0")
	junk := f.preview(t, "junk")
	ffmpegFeed(t, f.url+"/ts/video0", 3)

	g := f.post(t, "junk")
	rng := rand.New(rand.NewSource(7))
	noise := make([]byte, 100_000)
	rng.Read(noise)
	stream := append(append(append([]byte{}, noise...), packetsOf('P', 20)...), noise[:333]...)
	stream = append(stream, packetsOf('Q', 20)...)
	for len(stream) > 0 {
		n := min(1+rng.Intn(5000), len(stream))
		if _, err := g.w.Write(stream[:n]); err != nil {
			t.Fatal(err)
		}
		stream = stream[n:]
	}
	g.w.Close()
	select {
	case <-g.done:
	case <-time.After(5 * time.Second):
		t.Fatal("garbage POST did not finish")
	}
	testutil.Eventually(t, 2*time.Second, func() bool { return bytes.Contains(junk.bytes(), []byte("QQQQ")) }, "packets after garbage were lost")
	junk.checkWholePackets(t)
	for i := 0; i < len(junk.bytes()); i += ts.PacketSize {
		pkt := junk.bytes()[i : i+ts.PacketSize]
		if c := pkt[100]; c != 'P' && c != 'Q' {
			t.Fatalf("packet %d out of the garbage feed is not one of the real packets", i/ts.PacketSize)
		}
	}
	before := video.count()
	testutil.Eventually(t, 5*time.Second, func() bool { return video.count() > before+5 }, "the real feed stopped while garbage was posted")
	video.checkWholePackets(t)
}

// TestShutdownEndsIngest checks that Close ends a feed's POST at once rather
// than leaving it for hours.
func TestShutdownEndsIngest(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	p := f.post(t, "cam")
	if _, err := p.w.Write(packetsOf('A', 5)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, func() bool {
		f.srv.mu.Lock()
		defer f.srv.mu.Unlock()
		return f.srv.feeds["cam"] != nil
	}, "feed never registered")
	f.srv.Close()
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not end the ingest")
	}
}
