package crossbar

import (
	"fmt"
	"testing"
	"time"
)

func TestShedLevel(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	for _, tc := range []struct {
		level   int32
		d, next time.Duration
		busy    bool
		want    int32
	}{
		{0, 0, 0, false, 0},
		{0, ms(100), ms(150), true, 0},
		{0, ms(100), ms(250), true, 1}, // would pass the hold mark by the next look
		{0, ms(50), ms(900), true, 1},  // a link far slower than the stream
		{1, ms(150), ms(150), true, 1}, // in between: stays
		{1, ms(50), ms(50), true, 1},   // drained, but the link is still the bottleneck
		{1, ms(50), ms(50), false, 0},
		{1, ms(150), ms(150), false, 1},
		{0, ms(150), ms(150), false, 0},
	} {
		t.Run(fmt.Sprint(tc), func(t *testing.T) {
			if got := shedLevel(tc.level, tc.d, tc.next, tc.busy, time.Second); got != tc.want {
				t.Errorf("shedLevel(%d, %v, %v, %v) = %d, want %d", tc.level, tc.d, tc.next, tc.busy, got, tc.want)
			}
		})
	}
}
