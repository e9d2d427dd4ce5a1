package api

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testrelay"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

// ffmpegSine starts the README's microphone feed POSTing a 440 Hz MP2 tone
// to url, for the given seconds.
func ffmpegSine(t *testing.T, url string, seconds string) {
	t.Helper()
	testutil.StartFeed(t, testutil.Feed{Audio: true, Out: url, Extra: []string{"-t", seconds}})
}

// tracks walks MPEG-TS and counts the video and audio tracks its PMTs list.
func tracks(b []byte) (video, audio int) {
	r := tscheck.Walk(b)
	return len(r.Kind(true)), len(r.Kind(false))
}

// camAndMic starts real ffmpeg camera (video0) and microphone (audio0) feeds.
func (f *fixture) camAndMic(t *testing.T) {
	ffmpegFeed(t, f.url+"/ts/video0", 30)
	ffmpegSine(t, f.url+"/ts/audio0", "30")
}

func (f *fixture) setStream(t *testing.T, name string, feeds ...string) {
	t.Helper()
	if _, err := f.rules.SetStream(context.Background(), rules.StreamRule{Stream: name, Feeds: feeds}); err != nil {
		t.Fatal(err)
	}
}

// waitTracks waits until what a client received holds a PMT listing video
// and audio tracks as wanted.
func waitTracks(t *testing.T, got func() []byte, video, audio int, what string) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() bool {
		v, a := tracks(got())
		return v == video && a == audio
	}, "%s: want %d video and %d audio tracks", what, video, audio)
}

// TestPreviewMuxedStream previews a stream rule of two real ffmpeg feeds on
// /ws/{stream}: one MPEG-TS with both tracks, in whole packets.
func TestPreviewMuxedStream(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	f.setStream(t, "front", "video0", "audio0")
	p := f.preview(t, "front")
	f.camAndMic(t)
	waitTracks(t, p.bytes, 1, 1, "preview of the stream")
	p.checkWholePackets(t)
}

// TestStreamShadowsFeed: a stream rule named like a feed (video0 = video0 +
// audio0) is what /ws/video0 shows while it exists; without it, the feed.
func TestStreamShadowsFeed(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	f.camAndMic(t)
	f.setStream(t, "video0", "video0", "audio0")
	waitTracks(t, f.preview(t, "video0").bytes, 1, 1, "/ws/video0 with the stream rule")
	waitTracks(t, f.preview(t, "audio0").bytes, 0, 1, "/ws/audio0, a feed")
	if err := f.rules.DeleteStream("video0"); err != nil {
		t.Fatal(err)
	}
	waitTracks(t, f.preview(t, "video0").bytes, 1, 0, "/ws/video0 without the stream rule")
}

// TestDestinationFollowsStreamRule: a destination of "video0" pushes the
// feed; when a stream rule of that name appears it pushes the stream (both
// tracks) over the same connection, and the feed again when the rule goes.
func TestDestinationFollowsStreamRule(t *testing.T) {
	rl := testrelay.New(t, testrelay.Options{})
	f := newFixture(t, Config{}, rules.Config{})
	f.camAndMic(t)
	if _, err := f.rules.SetDestination(rwc.Rule{Stream: "video0", Destination: rl.URL(), ID: "0"}, false); err != nil {
		t.Fatal(err)
	}
	since := func(mark int) func() []byte {
		return func() []byte {
			var b []byte
			for _, m := range rl.Msgs()[mark:] {
				b = append(b, m.Data...)
			}
			return b
		}
	}
	waitTracks(t, since(0), 1, 0, "the feed")
	mark := rl.Count()
	f.setStream(t, "video0", "video0", "audio0")
	waitTracks(t, since(mark), 1, 1, "after the stream rule appeared")
	mark = rl.Count()
	if err := f.rules.DeleteStream("video0"); err != nil {
		t.Fatal(err)
	}
	// The stream's last messages may still arrive first: look at what came
	// after them.
	testutil.Eventually(t, 15*time.Second, func() bool {
		msgs := rl.Msgs()[mark:]
		if len(msgs) < 20 {
			return false
		}
		v, a := tracks(bytes.Join(msgsData(msgs[len(msgs)-10:]), nil))
		return v == 1 && a == 0
	}, "the destination did not go back to the feed")
	if n := len(rl.Headers()); n != 1 {
		t.Fatalf("%d connections to the relay, want 1: the switches reconnected", n)
	}
}

func msgsData(ms []testrelay.Msg) [][]byte {
	out := make([][]byte, len(ms))
	for i, m := range ms {
		out[i] = m.Data
	}
	return out
}
