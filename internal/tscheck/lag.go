package tscheck

import (
	"time"

	"github.com/vwlab/vw/ts"
)

// EachPTS calls fn for each packet of b that starts a PES with a PTS on an
// elementary-stream PID (0x100 to 0xfff), with the packet's offset in b.
func EachPTS(b []byte, fn func(off int, pid uint16, pts uint64)) {
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		p := b[i : i+ts.PacketSize]
		off, ok := ts.PayloadOffset(p)
		if !ok || !ts.PayloadUnitStart(p) || ts.PID(p) < 0x100 || ts.PID(p) >= 0x1000 {
			continue
		}
		h, err := ts.ParsePES(p[off:])
		if err != nil || h.PTS == 0 {
			continue
		}
		fn(i, ts.PID(p), ts.Timestamp(p[off+h.PTS:]))
	}
}

// Lag tracks how media arrived against its own clock: an arrival's lag is
// the time since the first arrival less the media time since the first PTS.
// A real-time ffmpeg on a busy machine, and its reader, run late by varying
// amounts; Jitter is how much, which no muxer can take out.
type Lag struct {
	// Early and Late are the least and the most lag seen.
	Early, Late time.Duration
	t0          time.Time
	pts0        uint64
}

// Note records media stamped pts that arrived at now.
func (l *Lag) Note(now time.Time, pts uint64) {
	if l.t0.IsZero() {
		l.t0, l.pts0 = now, pts
	}
	lag := now.Sub(l.t0) - time.Duration(int64(pts-l.pts0))*time.Second/90000
	l.Early, l.Late = min(l.Early, lag), max(l.Late, lag)
}

// Jitter is how much the arrivals wandered against the media clock.
func (l *Lag) Jitter() time.Duration { return l.Late - l.Early }
