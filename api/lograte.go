package api

import (
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// rateLog writes at most one warning per interval for each reason, and that
// line says how many refusals it stands for (count). Any peer of the control
// route, and any web page open on the lab host, can make vw stream refuse
// things as fast as it likes: without this, each refusal would be a log line.
// Reasons are a small fixed set chosen by the caller, so the map stays small.
type rateLog struct {
	log   *logrus.Entry
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	seen map[string]*rateEntry
}

type rateEntry struct {
	last    time.Time
	skipped int // refusals left out since last
}

func newRateLog(log *logrus.Entry, every time.Duration) *rateLog {
	return &rateLog{log: log, every: every, now: time.Now, seen: make(map[string]*rateEntry)}
}

// Warn logs msg with fields unless a line for reason was written less than
// an interval ago; then it only counts it, for the next line to report.
func (l *rateLog) Warn(reason string, fields logrus.Fields, msg string) {
	l.mu.Lock()
	now := l.now()
	e := l.seen[reason]
	if e == nil {
		e = &rateEntry{}
		l.seen[reason] = e
	}
	if !e.last.IsZero() && now.Sub(e.last) < l.every {
		e.skipped++
		l.mu.Unlock()
		return
	}
	count := e.skipped + 1
	e.last, e.skipped = now, 0
	l.mu.Unlock()
	l.log.WithFields(fields).WithFields(logrus.Fields{"reason": reason, "count": count}).Warn(msg)
}
