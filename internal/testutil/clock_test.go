package testutil

import (
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("a new clock reads %v, want %v", got, start)
	}
	// Moved from many goroutines while read (run with -race): every step
	// counts once.
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Advance(time.Second)
			_ = c.Now()
		}()
	}
	wg.Wait()
	if got, want := c.Now().Sub(start), 10*time.Second; got != want {
		t.Fatalf("ten one-second steps moved the clock by %v, want %v", got, want)
	}
}
