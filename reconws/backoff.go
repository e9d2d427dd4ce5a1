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

// schedule is a client's redial schedule through one outage. Most outages
// are a relay being redeployed and last a few seconds, and every moment
// between its return and the next dial is black on every screen: so for
// the first fast of an outage the client redials every lo (jittered), and
// only then backs off exponentially to hi, sparing a relay that stays down.
// An outage ends only when a connection has lived long enough (reset), so a
// relay that accepts and drops at once does not earn fast redials for ever.
type schedule struct {
	lo, hi, fast time.Duration
	since        time.Time // when this outage began; zero between outages
	attempt      int       // exponential steps taken after the fast phase
}

// next returns the wait before the next dial, now being the client's time
// of the failure (or drop) that calls for it.
func (s *schedule) next(now time.Time) time.Duration {
	if s.since.IsZero() {
		s.since = now
	}
	if now.Sub(s.since) < s.fast {
		return Backoff(s.lo, s.lo, 0)
	}
	// Doubling starts from lo, so that a relay back just after the fast
	// phase ends is still found one fast step later.
	d := Backoff(s.lo, s.hi, s.attempt)
	s.attempt++
	return d
}

// reset ends the outage: the next failure starts a new one, fast again.
func (s *schedule) reset() { s.since, s.attempt = time.Time{}, 0 }

// clock is the time a client's redial schedule runs on: the real one, or a
// test's, which moves only when the test says.
type clock interface {
	Now() time.Time
	// Timer returns a channel that receives once d has passed, and a stop
	// function.
	Timer(d time.Duration) (<-chan time.Time, func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
