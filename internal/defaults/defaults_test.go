package defaults

import (
	"strings"
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	for _, tc := range []struct {
		in, want time.Duration
		err      string
	}{
		{0, time.Second, ""},
		{3 * time.Millisecond, 3 * time.Millisecond, ""},
		{-time.Millisecond, -time.Millisecond, "Wait is -1ms: zero means the default (1s), and it cannot be negative"},
	} {
		v := tc.in
		err := Positive("Wait", &v, time.Second)
		if v != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Positive(%v) = %v, %v; want %v, %q", tc.in, v, err, tc.want, tc.err)
		}
	}
}

func TestZero(t *testing.T) {
	a, b := "", "set"
	Zero(&a, "def")
	Zero(&b, "def")
	if a != "def" || b != "set" {
		t.Errorf("Zero: %q, %q", a, b)
	}
}
