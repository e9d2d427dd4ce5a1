package crossbar

import (
	"slices"
	"testing"
	"time"
)

func TestStreamRate(t *testing.T) {
	var r streamRate
	t0 := time.Unix(1000, 0)
	var got []float64
	for i := range 60 {
		got = append(got, r.sample(t0.Add(time.Duration(i)*100*time.Millisecond), uint64(i)*10000))
	}
	if got[0] != 0 || slices.Max(got[1:]) > 100001 || slices.Min(got[1:]) < 99999 {
		t.Errorf("rates %v, want 0 then 100000", got)
	}
}

// A link's rate is what it carried while busy: idle time does not count,
// a new busy stretch is measured afresh, and the last stretch's rate stands
// in until it has been.
func TestLinkRate(t *testing.T) {
	var l linkRate
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	if _, ok := l.rate(t0); ok {
		t.Fatal("a rate before any sample")
	}
	// Busy at 50 KB/s for a second.
	acked := uint64(0)
	for ms := 0; ms <= 1000; ms += 100 {
		l.sample(at(ms), acked, 100000, 1000)
		acked += 5000
	}
	if r, ok := l.rate(at(1000)); !ok || r < 49000 || r > 51000 {
		t.Fatalf("busy at 50 KB/s: rate %.0f, %v", r, ok)
	}
	if !l.busyLately(at(1500)) || l.busyLately(at(2500)) {
		t.Error("busyLately does not follow the last busy sample")
	}
	// Idle (no backlog) for 3 s at 200 KB/s: not the link's rate.
	for ms := 1100; ms <= 4000; ms += 100 {
		acked += 20000
		l.sample(at(ms), acked, 0, 1000)
	}
	if r, ok := l.rate(at(4000)); !ok || r < 49000 || r > 51000 {
		t.Fatalf("after an idle stretch: rate %.0f, %v, want the busy one's", r, ok)
	}
	// Busy again at 20 KB/s: measured afresh, the old rate standing in
	// for the first tenth of a second.
	l.sample(at(4100), acked, 100000, 1000)
	acked += 2000
	l.sample(at(4200), acked, 100000, 1000)
	if r, _ := l.rate(at(4200)); r < 49000 {
		t.Errorf("a new stretch's first interval replaced the last rate: %.0f", r)
	}
	for ms := 4300; ms <= 5000; ms += 100 {
		acked += 2000
		l.sample(at(ms), acked, 100000, 1000)
	}
	if r, ok := l.rate(at(5000)); !ok || r < 19000 || r > 21000 {
		t.Errorf("busy again at 20 KB/s: rate %.0f, %v", r, ok)
	}
	if _, ok := l.rate(at(5000).Add(linkKeep + time.Second)); ok {
		t.Error("a rate long after the link was last busy")
	}
}
