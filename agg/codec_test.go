package agg

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

func TestMixer(t *testing.T) {
	type feed struct {
		name  string
		types []uint8
	}
	for _, tc := range []struct {
		name  string
		feeds []feed
		want  string // a word of the reason; "" for no error
	}{
		{"mpeg1 video and mp2", []feed{{"v", []uint8{0x02}}, {"a", []uint8{0x03}}}, ""},
		{"h264 and aac", []feed{{"v", []uint8{0x1b}}, {"a", []uint8{0x0f}}}, ""},
		{"h264 and aac in one feed", []feed{{"va", []uint8{0x1b, 0x0f}}}, ""},
		{"two mpeg1 videos", []feed{{"v", []uint8{0x02}}, {"w", []uint8{0x02}}}, ""},
		{"data mixes with anything", []feed{{"v", []uint8{0x1b, 0x06}}, {"d", []uint8{0x15}}}, ""},
		{"h264 and mp2", []feed{{"v", []uint8{0x1b}}, {"a", []uint8{0x03}}}, `feed "a" is mp2 (MPEG-1/MP2) but feed "v" is h264 (H.264/AAC)`},
		{"mpeg1 and aac", []feed{{"v", []uint8{0x02}}, {"a", []uint8{0x0f}}}, `feed "a" is aac (H.264/AAC) but feed "v" is mpeg1video (MPEG-1/MP2)`},
		{"two h264", []feed{{"v", []uint8{0x1b}}, {"w", []uint8{0x1b}}}, `feeds "v" and "w" both carry h264`},
		{"two aac", []feed{{"v", []uint8{0x1b}}, {"a", []uint8{0x0f}}, {"b", []uint8{0x0f}}}, `feeds "a" and "b" both carry aac`},
		{"two aac in one feed", []feed{{"a", []uint8{0x0f, 0x0f}}}, `feed "a" carries two aac tracks`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var x mixer
			var err error
			for _, f := range tc.feeds {
				if err = x.add(f.name, f.types); err != nil {
					break
				}
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrCodecMix)):
				t.Fatalf("got %v, want a reason with %q", err, tc.want)
			}
		})
	}
}

// feedBytes returns the first frames of a synthetic feed, PAT and PMT
// first.
func feedBytes(video, h264 bool, frames int) []byte {
	s := tscheck.NewSynth(video, 0)
	s.H264 = h264
	return s.Append(nil, frames)
}

// TestSetRefusesMixedCodecs: once the feeds' PMTs have been seen at ingest,
// a rule that mixes families or doubles an H.264/AAC track is refused and
// not stored; a rule of feeds not connected yet is accepted; when a feed's
// connection ends its codecs are forgotten.
func TestSetRefusesMixedCodecs(t *testing.T) {
	h := hub.New()
	a := newAgg(t, Config{}, h)
	defer a.Close()
	ctx := testutil.Context(t, 5*time.Second)
	watch := func(feed string, from uint64, video, h264 bool) *FeedWatcher {
		w := a.WatchFeed(feed, from)
		b := feedBytes(video, h264, 3)
		w.Observe(b[:ts.PacketSize]) // the PAT alone first
		w.Observe(b)
		return w
	}
	v264 := watch("v264", 1, true, true)
	aac := watch("aac", 2, false, true)
	mp2 := watch("mp2", 3, false, false)
	watch("aac2", 4, false, true)
	if got := a.Feeds(); len(got) != 4 || strings.Join(got["v264"].Codecs, ",") != "h264" || strings.Join(got["mp2"].Codecs, ",") != "mp2" {
		t.Fatalf("Feeds = %+v", got)
	}
	for _, feeds := range [][]string{{"v264", "mp2"}, {"v264", "aac", "aac2"}, {"mp2", "aac"}} {
		err := a.Set(ctx, "s", feeds)
		if !errors.Is(err, ErrCodecMix) {
			t.Fatalf("Set(%v) = %v, want ErrCodecMix", feeds, err)
		}
		if _, ok := a.Get("s"); ok {
			t.Fatalf("Set(%v) was refused but stored", feeds)
		}
	}
	for _, feeds := range [][]string{{"v264", "aac"}, {"v264", "unknown"}, {"v264", "aac", "mp2later"}} {
		if err := a.Set(ctx, "s", feeds); err != nil {
			t.Fatalf("Set(%v) = %v", feeds, err)
		}
	}
	// A newer connection of mp2 reports AAC: the old one's end forgets
	// nothing of the new one.
	mp2new := watch("mp2", 5, false, true)
	mp2.Close()
	if got := a.Feeds()["mp2"].Codecs; strings.Join(got, ",") != "aac" {
		t.Fatalf("after a new connection: mp2 carries %v", got)
	}
	mp2new.Close()
	v264.Close()
	aac.Close()
	if _, ok := a.Feeds()["v264"]; ok {
		t.Fatal("a closed feed's codecs are still known")
	}
	if err := a.Set(ctx, "s", []string{"v264", "mp2"}); err != nil {
		t.Fatalf("feeds no longer connected are refused: %v", err)
	}
}

// TestMuxLeavesOutMismatchedFeed: a stream rule names an H.264 camera and
// a microphone that turns out to send MP2. The microphone is left out: none
// of its packets leave, the PMT lists the video alone, and the reason is
// reported. When the camera goes away the microphone joins; when it comes
// back, the camera is the one left out (a feed in keeps its place).
func TestMuxLeavesOutMismatchedFeed(t *testing.T) {
	r := newRig(t, Config{}, "video0", "audio0")
	var left leftOut
	r.m.left = &left
	video := tscheck.NewSynth(true, 0)
	video.H264 = true
	mp2 := tscheck.NewSynth(false, 0)
	// The camera first: between feeds going live at once, which comes
	// first decides.
	r.play(200*time.Millisecond, map[string]*tscheck.Synth{"video0": video})
	r.play(time.Second, map[string]*tscheck.Synth{"video0": video, "audio0": mp2})

	rep := tscheck.Walk(r.out)
	if v, a := rep.Kind(true), rep.Kind(false); len(v) != 1 || len(a) != 0 || rep.Unlisted > 0 || len(rep.CCErrors) > 0 {
		t.Fatalf("want the video alone: %d video, %d audio PIDs, %d unlisted packets, CC errors %v", len(v), len(a), rep.Unlisted, rep.CCErrors)
	}
	why := left.all()["audio0"]
	if !strings.Contains(why, `feed "audio0" is mp2`) || len(left.all()) != 1 {
		t.Fatalf("reported left out: %v", left.all())
	}

	// The camera stops: after the grace the microphone joins.
	mark := len(r.out)
	r.play(3*time.Second, map[string]*tscheck.Synth{"audio0": mp2})
	rep = tscheck.Walk(r.out[mark:])
	if a := rep.Kind(false); len(a) != 1 || a[0].PES == 0 {
		t.Fatalf("the microphone did not join once the camera left: %+v", a)
	}
	if len(left.all()) != 0 {
		t.Fatalf("still reported left out: %v", left.all())
	}
	// The camera returns and is the one left out now.
	mark = len(r.out)
	r.play(time.Second, map[string]*tscheck.Synth{"video0": video, "audio0": mp2})
	rep = tscheck.Walk(r.out[mark:])
	if v := rep.Kind(true); len(v) != 0 || !strings.Contains(left.all()["video0"], "is h264") {
		t.Fatalf("the returning camera: %d video PIDs; left out %v", len(v), left.all())
	}
}
