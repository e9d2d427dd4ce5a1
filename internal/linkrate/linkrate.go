// Package linkrate measures how fast a link drains a sender's backlog: the
// bytes its peer acknowledged per second over the intervals in which the
// backlog was long enough that the link, not the stream, set the pace. The
// relay measures each slow viewer's link this way, vw stream each
// destination's uplink; each decides for itself which intervals count as
// busy and how long a measurement stays good.
package linkrate

import (
	"math"
	"time"
)

const (
	// Decay is the time constant, in busy seconds, over which older
	// intervals fade from the estimate: short, because a path's rate
	// changes at once when it gets congested.
	Decay = 0.5
	// Gap is how long a link may go without being busy before its rate is
	// measured afresh.
	Gap = time.Second
)

// Drain is what a link drained while it was busy, older intervals fading.
// The zero Drain has measured nothing.
type Drain struct {
	bytes, secs float64
	lastBusy    time.Time // end of the latest busy interval
}

// Add counts n bytes acknowledged over the busy interval from from to now.
// An interval more than Gap after the last busy one starts the measurement
// afresh; Add then returns the measurement it replaced, and true.
func (d *Drain) Add(from, now time.Time, n uint64) (replaced Drain, fresh bool) {
	if now.Sub(d.lastBusy) > Gap {
		replaced, fresh = *d, true
		d.bytes, d.secs = 0, 0
	}
	dt := now.Sub(from).Seconds()
	keep := math.Exp(-dt / Decay)
	d.bytes = d.bytes*keep + float64(n)
	d.secs = d.secs*keep + dt
	d.lastBusy = now
	return replaced, fresh
}

// Rate is the bytes per second drained, once at least least of busy time
// has been measured.
func (d Drain) Rate(least time.Duration) (float64, bool) {
	if d.secs < least.Seconds() {
		return 0, false
	}
	return d.bytes / d.secs, true
}

// LastBusy is when the link was last busy; zero if never.
func (d Drain) LastBusy() time.Time { return d.lastBusy }
