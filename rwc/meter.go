package rwc

import (
	"time"

	"github.com/vwlab/vw/internal/linkrate"
	"github.com/vwlab/vw/reconws"
)

// rateMeter measures the stream's own rate: the bytes its topic delivered
// over the last two seconds, in eight buckets.
type rateMeter struct {
	buckets [8]float64
	cur     int
	start   time.Time // of the current bucket
	full    int       // buckets completed, up to len(buckets)
}

const bucketSpan = 250 * time.Millisecond

func (m *rateMeter) add(now time.Time, n int) {
	if m.start.IsZero() {
		m.start = now
	}
	switch k := int(now.Sub(m.start) / bucketSpan); {
	case k >= len(m.buckets): // silent for the whole window
		m.buckets = [len(m.buckets)]float64{}
		m.full, m.start = len(m.buckets)-1, now
	case k > 0:
		for range k {
			m.cur = (m.cur + 1) % len(m.buckets)
			m.buckets[m.cur] = 0
			m.full = min(m.full+1, len(m.buckets)-1)
		}
		m.start = m.start.Add(time.Duration(k) * bucketSpan)
	}
	m.buckets[m.cur] += float64(n)
}

// rate is bytes per second over the buckets completed and the current one;
// 0 until half a second is known.
func (m *rateMeter) rate(now time.Time) float64 {
	if m.full < 2 {
		return 0
	}
	var sum float64
	for i := 0; i <= m.full; i++ {
		sum += m.buckets[(m.cur-i+len(m.buckets))%len(m.buckets)]
	}
	span := time.Duration(m.full)*bucketSpan + now.Sub(m.start)
	return sum / span.Seconds()
}

// linkMeter measures how fast the link drains a destination's backlog: the
// bytes the peer acknowledged while the backlog was long enough that the
// link, not the stream, set the pace. A link that keeps up never shows a
// long backlog, so its rate stays unknown, and the stream's rate stands in.
type linkMeter struct {
	at      time.Time
	acked   uint64
	backlog int64
	ok      bool
	drain   linkrate.Drain
}

// sample notes the backlog at now; busy is the backlog above which the
// link counts as the bottleneck.
func (l *linkMeter) sample(now time.Time, b reconws.Backlog, busy int64) {
	acked := b.Written - uint64(b.Unacked)
	if l.ok && acked >= l.acked && l.backlog > busy {
		l.drain.Add(l.at, now, acked-l.acked)
	}
	l.at, l.acked, l.backlog, l.ok = now, acked, b.Bytes(), true
}

// reset forgets the previous sample, for a new client whose counters
// start afresh.
func (l *linkMeter) reset() { l.ok = false }

// rate is the link's rate in bytes per second, if it was the bottleneck
// for 50 ms or more in the last three seconds: soon, because a link that
// just became slow makes the stream's rate a wrong guess by as much.
func (l *linkMeter) rate(now time.Time) (float64, bool) {
	r, ok := l.drain.Rate(50 * time.Millisecond)
	if !ok || now.Sub(l.drain.LastBusy()) > 3*time.Second {
		return 0, false
	}
	return r, true
}
