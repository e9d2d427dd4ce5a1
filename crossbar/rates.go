package crossbar

// What the watcher measures to tell how far behind a viewer is: how fast
// its link drains its backlog, how fast its stream flows, and (through
// internal/sockq) what its socket holds unacknowledged.

import (
	"time"

	"github.com/vwlab/vw/internal/linkrate"
)

// linkRate measures how fast a viewer's link drains its backlog: bytes
// acknowledged per second over intervals that began and ended with a
// backlog (the link the bottleneck), the older ones fading. A busy stretch
// that starts linkGap or more after the last is measured afresh; until it
// has linkMin of busy time, the last stretch's rate stands in (for up to
// linkKeep): a viewer that skipped until its backlog drained is on the
// same link when the next keyframe fills it again.
type linkRate struct {
	at      time.Time
	acked   uint64
	backlog int64
	ok      bool
	drain   linkrate.Drain
	prev    float64 // the last stretch's rate
	prevAt  time.Time
}

// linkKeep is how long a link's last measured rate stands in.
const linkKeep = 30 * time.Second

// sample notes the bytes acknowledged and the backlog at now; an interval
// counts when the backlog was above busy at both its ends.
func (l *linkRate) sample(now time.Time, acked uint64, backlog, busy int64) {
	if l.ok && l.backlog > busy && backlog > busy && acked >= l.acked {
		if last, fresh := l.drain.Add(l.at, now, acked-l.acked); fresh {
			if r, ok := last.Rate(linkMin); ok {
				l.prev, l.prevAt = r, last.LastBusy()
			}
		}
	}
	l.at, l.acked, l.backlog, l.ok = now, acked, backlog, true
}

// busyLately reports whether the link has been the bottleneck within
// linkGap.
func (l *linkRate) busyLately(now time.Time) bool {
	last := l.drain.LastBusy()
	return !last.IsZero() && now.Sub(last) <= linkGap
}

// rate is the link's rate in bytes per second, if measured lately.
func (l *linkRate) rate(now time.Time) (float64, bool) {
	if r, ok := l.drain.Rate(linkMin); ok {
		if now.Sub(l.drain.LastBusy()) <= linkKeep {
			return r, true
		}
		return 0, false
	}
	if l.prevAt.IsZero() || now.Sub(l.prevAt) > linkKeep {
		return 0, false
	}
	return l.prev, true
}

// streamRate is a stream's rate in bytes per second over the last
// rateWindow, from samples of its position.
type streamRate struct {
	at   [32]time.Time
	pos  [32]uint64
	n, i int
}

const rateWindow = 2 * time.Second

// sample notes the stream's position at now and returns its rate.
func (r *streamRate) sample(now time.Time, pos uint64) float64 {
	const size = len(r.at)
	r.at[r.i], r.pos[r.i] = now, pos
	r.i = (r.i + 1) % size
	r.n = min(r.n+1, size)
	if r.n < 2 {
		return 0
	}
	// The oldest sample within the window, or else the one before now's.
	from := (r.i - 2 + size) % size
	for k := 0; k < r.n-1; k++ {
		if j := (r.i - r.n + k + size) % size; now.Sub(r.at[j]) <= rateWindow {
			from = j
			break
		}
	}
	dt := now.Sub(r.at[from]).Seconds()
	if dt <= 0 {
		return 0
	}
	return float64(pos-r.pos[from]) / dt
}

func seconds(s float64) time.Duration {
	if s > 3600 {
		return time.Hour
	}
	return time.Duration(s * float64(time.Second))
}
