package linkrate

import (
	"testing"
	"time"
)

// A link busy at 50 KB/s and then, after a pause longer than Gap, at
// 20 KB/s measures 50 and then 20: the second stretch starts afresh and
// hands back the first.
func TestDrainMeasuresEachBusyStretch(t *testing.T) {
	var d Drain
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	if _, ok := d.Rate(time.Millisecond); ok {
		t.Fatal("a rate before anything was added")
	}
	if _, fresh := d.Add(at(0), at(100), 5000); !fresh {
		t.Error("the first interval did not start a measurement")
	}
	if _, ok := d.Rate(150 * time.Millisecond); ok {
		t.Error("a rate from 100 ms of busy time, with 150 ms asked for")
	}
	for ms := 200; ms <= 1000; ms += 100 {
		if _, fresh := d.Add(at(ms-100), at(ms), 5000); fresh {
			t.Fatalf("at %d ms: an interval right after a busy one started afresh", ms)
		}
	}
	if r, ok := d.Rate(150 * time.Millisecond); !ok || r < 49999 || r > 50001 {
		t.Errorf("busy at 50 KB/s: rate %.0f, %v", r, ok)
	}
	if got := d.LastBusy(); !got.Equal(at(1000)) {
		t.Errorf("LastBusy = %v, want %v", got, at(1000))
	}

	last, fresh := d.Add(at(2500), at(2600), 2000)
	if !fresh {
		t.Fatal("an interval 1.6 s after the last busy one did not start afresh")
	}
	if r, ok := last.Rate(150 * time.Millisecond); !ok || r < 49999 || r > 50001 || !last.LastBusy().Equal(at(1000)) {
		t.Errorf("the replaced stretch: rate %.0f, %v, last busy %v", r, ok, last.LastBusy())
	}
	for ms := 2700; ms <= 3500; ms += 100 {
		d.Add(at(ms-100), at(ms), 2000)
	}
	if r, ok := d.Rate(150 * time.Millisecond); !ok || r < 19999 || r > 20001 {
		t.Errorf("busy again at 20 KB/s: rate %.0f, %v", r, ok)
	}
}

// Older intervals fade: after a change of pace the estimate moves most of
// the way to the new rate within a few Decay constants of busy time.
func TestDrainFollowsAChangeOfPace(t *testing.T) {
	var d Drain
	t0 := time.Unix(1000, 0)
	now := t0
	step := func(n uint64) {
		next := now.Add(100 * time.Millisecond)
		d.Add(now, next, n)
		now = next
	}
	for range 20 {
		step(10000) // 100 KB/s
	}
	for range 20 {
		step(1000) // 10 KB/s
	}
	if r, _ := d.Rate(0); r > 12000 {
		t.Errorf("2 s after dropping from 100 to 10 KB/s the rate is %.0f: old intervals do not fade", r)
	}
}
