package agg

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newAgg returns New(cfg, h), failing the test on an error.
func newAgg(t testing.TB, cfg Config, h *hub.Hub) *Agg {
	t.Helper()
	a, err := New(cfg, h, testutil.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// withDefaults is cfg.withDefaults, failing the test on an error.
func withDefaults(t testing.TB, cfg Config) Config {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestConfig: zero fields take the defaults; a negative one is refused,
// by name.
func TestConfig(t *testing.T) {
	if got := withDefaults(t, Config{Queue: 7}); got.Queue != 7 || got.Grace != DefaultConfig().Grace {
		t.Fatalf("withDefaults: %+v", got)
	}
	_, err := New(Config{Grace: -time.Second}, hub.New(), testutil.Log(t))
	if err == nil || !strings.Contains(err.Error(), "Grace is -1s") {
		t.Fatalf("negative Grace: %v", err)
	}
}

func TestRules(t *testing.T) {
	h := hub.New()
	a := newAgg(t, Config{}, h)
	defer a.Close()
	ctx := testutil.Context(t, 5*time.Second)
	for _, tc := range []struct {
		stream string
		feeds  []string
	}{
		{"s1", []string{"video0", "audio0"}},
		{"s2", []string{"video1"}},
		{"s1", []string{"video0"}}, // replaces
		{"s3", nil},
	} {
		if err := a.Set(ctx, tc.stream, tc.feeds); err != nil {
			t.Fatal(err)
		}
		if got, ok := a.Get(tc.stream); !ok || fmt.Sprint(got) != fmt.Sprint(tc.feeds) {
			t.Fatalf("Get(%s) = %v %v, want %v", tc.stream, got, ok, tc.feeds)
		}
	}
	if all := a.All(); len(all) != 3 || fmt.Sprint(all["s1"]) != "[video0]" {
		t.Fatalf("All = %v", all)
	}
	if !a.Delete("s2") || a.Delete("s2") {
		t.Fatal("Delete reports wrongly")
	}
	a.DeleteAll()
	if len(a.All()) != 0 {
		t.Fatal("DeleteAll left rules")
	}
	a.Close()
	if err := a.Set(ctx, "s", []string{"x"}); err != ErrClosed {
		t.Fatalf("Set after Close: %v", err)
	}
}

// TestMuteChanges: a Set counts as a mute change when it changes which
// feeds the stream combines; the first Set, a repeat or a reorder does not.
func TestMuteChanges(t *testing.T) {
	a := newAgg(t, Config{}, hub.New())
	defer a.Close()
	ctx := testutil.Context(t, 5*time.Second)
	for _, feeds := range [][]string{
		{"video0", "audio0"},
		{"video0"},           // mute: 1
		{"video0"},           // repeat
		{"audio0", "video0"}, // unmute: 2
		{"video0", "audio0"}, // reorder
		{"video0", "audio0", "audio0"},
	} {
		if err := a.Set(ctx, "s", feeds); err != nil {
			t.Fatal(err)
		}
	}
	if c, ok := a.Counters("s"); !ok || c.MuteChanges != 2 {
		t.Fatalf("Counters = %+v %v, want 2 mute changes", c, ok)
	}
	if _, ok := a.Counters("none"); ok {
		t.Fatal("Counters of a stream with no rule")
	}
}

// trickle publishes a synthetic feed on feed's topic one packet a
// millisecond until stop closes, so that a rule change often finds a PES
// half sent.
func trickle(h *hub.Hub, feed string, video bool, stop <-chan struct{}) {
	topic := h.Join(FeedTopic(feed))
	defer topic.Leave()
	s := tscheck.NewSynth(video, 0)
	from := h.NewID()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var pending []byte
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if len(pending) == 0 {
				pending = s.Append(nil, 1)
			}
			topic.Publish(&hub.Message{Data: pending[:ts.PacketSize], From: from})
			pending = pending[ts.PacketSize:]
		}
	}
}

// TestSetRemovesBeforeReturning publishes audio and video continuously from
// goroutines and removes the audio: once Set returns, no audio packet is
// published, and the last audio PES went out whole.
func TestSetRemovesBeforeReturning(t *testing.T) {
	h := hub.New()
	a := newAgg(t, Config{}, h)
	defer a.Close()
	ctx := testutil.Context(t, 10*time.Second)
	sub := h.Subscribe(StreamTopic("s"), hub.SubConfig{Queue: 1 << 14})
	defer sub.Close()
	if err := a.Set(ctx, "s", []string{"video0", "audio0"}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{}, 2)
	for _, f := range []struct {
		name  string
		video bool
	}{{"video0", true}, {"audio0", false}} {
		go func() {
			defer func() { done <- struct{}{} }()
			trickle(h, f.name, f.video, stop)
		}()
	}
	defer func() { close(stop); <-done; <-done }()
	var out []byte
	audioPID := uint16(0)
	testutil.Eventually(t, 5*time.Second, func() bool {
		for {
			select {
			case m := <-sub.C():
				out = append(out, m.Data...)
				continue
			default:
			}
			break
		}
		a := tscheck.Walk(out).Kind(false)
		if len(a) == 1 && a[0].PES > 20 {
			audioPID = a[0].PID
			return true
		}
		return false
	}, "no audio muxed")
	for i := range 5 {
		if err := a.Set(ctx, "s", []string{"video0"}); err != nil {
			t.Fatal(err)
		}
		// The muxer publishes synchronously, so everything it published
		// before Set returned is in the queue now: take it, and check all
		// that comes after.
		for range len(sub.C()) {
			out = append(out, (<-sub.C()).Data...)
		}
		mark := len(out)
		testutil.Eventually(t, 5*time.Second, func() bool {
			select {
			case m := <-sub.C():
				out = append(out, m.Data...)
			default:
			}
			return len(out) > mark+50*ts.PacketSize
		}, "video stopped")
		for j := mark; j < len(out); j += ts.PacketSize {
			if ts.PID(out[j:]) == audioPID {
				t.Fatalf("round %d: audio packet after Set returned", i)
			}
		}
		if err := a.Set(ctx, "s", []string{"video0", "audio0"}); err != nil {
			t.Fatal(err)
		}
	}
	rep := tscheck.Walk(out)
	if len(rep.CCErrors) > 0 || rep.Kind(false)[0].CutPES > 0 {
		t.Fatalf("CC errors %v, audio %+v", rep.CCErrors, rep.Kind(false)[0])
	}
}

// TestChurn sets and deletes rules 10,000 times: goroutines and topics
// return to where they were.
func TestChurn(t *testing.T) {
	h := hub.New()
	a := newAgg(t, Config{}, h)
	defer a.Close()
	ctx := context.Background()
	base := runtime.NumGoroutine()
	topics := h.Topics()
	for i := range 10000 {
		name := fmt.Sprintf("s%d", i%7)
		if err := a.Set(ctx, name, []string{"video0", fmt.Sprintf("audio%d", i%3)}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			a.Delete(name)
		}
	}
	a.DeleteAll()
	testutil.Eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= base }, "goroutines: %d, baseline %d", runtime.NumGoroutine(), base)
	if h.Topics() != topics {
		t.Fatalf("%d topics left, baseline %d", h.Topics(), topics)
	}
}
