package tscheck

import (
	"testing"
	"time"
)

func TestEachPTS(t *testing.T) {
	s := NewSynth(true, 9000)
	b := s.Append(nil, 5)
	var got []uint64
	EachPTS(b, func(off int, pid uint16, pts uint64) {
		if off%188 != 0 || pid != 0x100 {
			t.Fatalf("PTS %d at offset %d on PID %#x", pts, off, pid)
		}
		got = append(got, pts)
	})
	if len(got) != 5 || got[0] != 9000 || got[4] != 9000+4*s.Frame() {
		t.Fatalf("PTS %v: want the 5 frames' from 9000 by %d", got, s.Frame())
	}
}

func TestLag(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var l Lag
	for _, a := range []struct {
		after time.Duration
		pts   uint64
	}{
		{0, 90000},
		{time.Second, 2 * 90000},                      // on time
		{2500 * time.Millisecond, 3 * 90000},          // 500 ms late
		{2900 * time.Millisecond, 4*90000 + 90000/10}, // 200 ms early
		{4100 * time.Millisecond, 5 * 90000},          // 100 ms late
	} {
		l.Note(t0.Add(a.after), a.pts)
	}
	if l.Early != -200*time.Millisecond || l.Late != 500*time.Millisecond || l.Jitter() != 700*time.Millisecond {
		t.Fatalf("early %v, late %v, jitter %v: want -200ms, 500ms, 700ms", l.Early, l.Late, l.Jitter())
	}
}
