package api

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/agg"
	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/ts"
)

// TestPreviewStartsAtKeyframe checks the local preview on a hub whose
// streams and feeds keep a keyframe cache (as vw stream wires it): a
// preview opened in the middle of a GOP gets the stream from its latest
// keyframe, of a feed watched directly and of a stream through the muxer,
// then the live stream without a gap.
func TestPreviewStartsAtKeyframe(t *testing.T) {
	h := hub.New()
	h.KeepWith(crossbar.KeyframeCaches(0, 0, func(topic string) bool {
		return strings.HasPrefix(topic, agg.StreamTopic("")) || strings.HasPrefix(topic, agg.FeedTopic(""))
	}))
	f := newFixtureHub(t, Config{}, rules.Config{}, testutil.Log(t), h)
	if code, body := f.do(t, "POST", "/api/streams", `{"stream":"front","feeds":["cam"]}`); code != 200 {
		t.Fatalf("stream rule: %d %s", code, body)
	}
	early := f.preview(t, "front")
	cam := f.post(t, "cam")
	s := tscheck.NewSynth(true, 90000)
	s.KeyEvery = 10
	sent := s.Append(nil, 25) // keyframes at frames 0, 10, 20
	if _, err := cam.w.Write(sent); err != nil {
		t.Fatal(err)
	}
	// The muxer holds back nothing once a frame is complete: wait until
	// the early preview has the 25th frame's picture.
	testutil.Eventually(t, 5*time.Second, func() bool { return pictures(early.bytes()) == 25 },
		"the early preview did not get 25 pictures")
	key := bytes.LastIndex(sent, []byte{0, 0, 1, 0xb3})
	key -= key % ts.PacketSize

	feed := f.preview(t, "cam")
	stream := f.preview(t, "front")
	more := s.Append(nil, 3)
	if _, err := cam.w.Write(more); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return pictures(stream.bytes()) >= 8 && len(feed.bytes()) >= 2*ts.PacketSize+len(sent)-key+len(more)
	},
		"the previews did not get the GOP and the live frames")

	got := feed.bytes()
	if !bytes.Equal(got[2*ts.PacketSize:], append(sent[key:], more...)) {
		t.Fatalf("the feed's preview after the PAT/PMT is not the feed from its latest keyframe (byte %d) on", key)
	}
	// Through the muxer: the first picture is the keyframe, and all eight
	// since it arrive (five cached, three live).
	b := stream.bytes()
	if n := pictures(b); n != 8 {
		t.Fatalf("the stream's preview got %d pictures, want the 5 of the GOP and 3 live", n)
	}
	if i, j := bytes.Index(b, []byte{0, 0, 1, 0xb3}), bytes.Index(b, []byte{0, 0, 1, 0}); i < 0 || i > j {
		t.Fatal("the stream's preview does not start with a keyframe")
	}
}

// pictures counts the MPEG-1 picture start codes in b.
func pictures(b []byte) int { return bytes.Count(b, []byte{0, 0, 1, 0}) }
