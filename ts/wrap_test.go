package ts

import "testing"

func TestTimestampDiff(t *testing.T) {
	for _, tc := range []struct {
		a, b uint64
		want int64
	}{
		{100, 40, 60},
		{40, 100, -60},
		{5, TimestampMask - 4, 10},  // just after the wrap is later
		{TimestampMask - 4, 5, -10}, // and just before it earlier
		{1 << 32, 0, -1 << 32},      // half the clock apart: the negative end
		{1<<32 - 1, 0, 1<<32 - 1},
		{7 + 1<<33, 7, 0}, // bits above the 33rd do not count
	} {
		if got := TimestampDiff(tc.a, tc.b); got != tc.want {
			t.Errorf("TimestampDiff(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestCounters(t *testing.T) {
	c := Continuity(14)
	for _, want := range []Continuity{15, 0, 1} {
		if c = c.Next(); c != want {
			t.Fatalf("continuity counter went to %d, want %d", c, want)
		}
	}
	v := Version(30)
	for _, want := range []Version{31, 0, 1} {
		if v = v.Next(); v != want {
			t.Fatalf("version went to %d, want %d", v, want)
		}
	}
}
