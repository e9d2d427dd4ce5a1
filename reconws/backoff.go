package reconws

import (
	"math/rand/v2"
	"time"
)

// Backoff returns the wait before redial number attempt (0 for the first
// redial after a failure): lo doubled attempt times, capped at hi, then
// jittered to a random point in [step/2, step] so that many clients cut off
// together by one relay restart do not all come back in the same instant.
func Backoff(lo, hi time.Duration, attempt int) time.Duration {
	step := Step(lo, hi, attempt)
	half := step / 2
	return half + rand.N(step-half+1)
}

// Step is the upper bound of Backoff's jitter for attempt.
func Step(lo, hi time.Duration, attempt int) time.Duration {
	step := lo
	for i := 0; i < attempt && step < hi; i++ {
		step *= 2
	}
	return min(step, hi)
}
