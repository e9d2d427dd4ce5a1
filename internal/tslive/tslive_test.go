package tslive

import (
	"math"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/tscheck"
)

// A stream whose pictures arrive on time for a second, then each 100 ms
// later than the one before, and whose audio loses every other frame of
// its second half second: the meter sees every frame with its PTS, and the
// figures follow.
func TestMeter(t *testing.T) {
	m := New(true)
	t0 := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	v := tscheck.NewSynth(true, 1<<33-3600*10) // wraps after 10 pictures
	v.FrameSize = 1000
	for i := range 40 {
		at := t0.Add(time.Duration(i) * 40 * time.Millisecond)
		if i >= 25 {
			at = at.Add(time.Duration(i-24) * 100 * time.Millisecond)
		}
		m.Add(v.Append(nil, 1), at)
	}
	a := tscheck.NewSynth(false, 90000)
	for i := range 38 {
		b := a.Append(nil, 1)
		if i < 19 || i%2 == 0 {
			m.Add(b, t0.Add(time.Duration(i)*2351*time.Second/90000))
		}
	}
	video, audio := m.Video(), m.Audio()
	if len(video) != 40 || len(audio) != 19+9 {
		t.Fatalf("%d pictures and %d audio frames, want 40 and 28", len(video), len(audio))
	}
	if video[39].PTS != 39*40*time.Millisecond {
		t.Errorf("last picture's PTS %v across the 33-bit wrap, want %v", video[39].PTS, 39*40*time.Millisecond)
	}
	lead := Lead(video)
	if !lead.Equal(t0) {
		t.Errorf("lead %v, want the first picture's arrival %v", lead, t0)
	}
	if w := Worst(video, lead); w != 1500*time.Millisecond {
		t.Errorf("worst %v, want 1.5 s (15 pictures 100 ms later each)", w)
	}
	if got := len(Arrived(video, t0, t0.Add(time.Second))); got != 25 {
		t.Errorf("%d pictures arrived in the first second, want 25", got)
	}
	if s := Step(audio); s != 2351*time.Second/90000 {
		t.Errorf("audio step %v", s)
	}
	aLead := Lead(audio)
	half := t0.Add(19 * Step(audio))
	if s := Share(audio, aLead, Step(audio), t0, half); math.Abs(s-1) > 0.01 {
		t.Errorf("audio share of the first half second %.2f, want 1", s)
	}
	if s := Share(audio, aLead, Step(audio), half, half.Add(19*Step(audio))); math.Abs(s-9.0/19) > 0.01 {
		t.Errorf("audio share of the second half second %.2f, want 9/19", s)
	}
	if r := m.Rate(time.Second); r <= 0 || len(m.Bytes()) == 0 || m.Unaligned() != 0 {
		t.Errorf("rate %v, %d bytes kept, %d unaligned", r, len(m.Bytes()), m.Unaligned())
	}
}

// Frames of two meters are matched by PTS, whatever each meter's first
// frame: a picture's delay is its arrival less its reference's, and what
// share of the reference's frames of a window arrived counts each once.
func TestAgainst(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	ref, late := New(false), New(false)
	v := tscheck.NewSynth(true, 90000)
	v.FrameSize = 500
	for i := range 20 {
		b := v.Append(nil, 1)
		at := t0.Add(time.Duration(i) * 40 * time.Millisecond)
		ref.Add(b, at)
		if i >= 5 && i%4 != 0 { // joins late, loses every fourth
			late.Add(b, at.Add(time.Duration(i)*10*time.Millisecond))
		}
	}
	ps := Against(late.Video(), ref.Video())
	if len(ps) != 12 {
		t.Fatalf("%d pairs, want 12", len(ps))
	}
	for _, p := range ps {
		i := int(p.Ref.Sub(t0) / (40 * time.Millisecond))
		if p.Behind() != time.Duration(i)*10*time.Millisecond {
			t.Errorf("picture %d: %v behind, want %v", i, p.Behind(), time.Duration(i)*10*time.Millisecond)
		}
	}
	// Pictures 8..15 were made in this window; 8 and 12 were lost.
	if got := Delivered(late.Video(), ref.Video(), t0.Add(8*40*time.Millisecond), t0.Add(16*40*time.Millisecond)); got != 6.0/8 {
		t.Errorf("delivered %v, want 6/8", got)
	}
}
