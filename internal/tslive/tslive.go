// Package tslive owns measuring how live an MPEG-TS stream arrives, for the
// tests and benchmarks of delivery over slow links: a Meter takes the
// messages a viewer receives, with their arrival times, and keeps every
// video and audio frame's presentation time against the time it arrived.
//
// How far behind live a frame came is measured two ways. Against the
// stream's own clock: its arrival less its PTS, less the least such
// difference of the run (the stream's lead when nothing held it back).
// Against a reference: its arrival less the arrival of the frame with the
// same PTS at another meter, one that watches the stream where it is made
// (vw stream's preview); that one does not count an encoder that falls
// behind real time on a busy machine as the path's delay.
package tslive

import (
	"slices"
	"sync"
	"time"

	"github.com/vwlab/vw/ts"
)

// Frame is one PES (one picture, one audio frame) as it arrived.
type Frame struct {
	// PTS is the presentation time, from the first PTS of its kind.
	PTS time.Duration
	// At is when the message holding its first packet arrived.
	At time.Time
	// Raw is the 33-bit PTS as sent, which names the frame across meters.
	Raw uint64
}

// Meter collects frames from messages. It is safe for concurrent use.
type Meter struct {
	mu        sync.Mutex
	video     []Frame
	audio     []Frame
	first     [2]int64 // first PTS of video, audio, plus one
	bytes     []byte
	keep      bool
	unaligned int
	sizes     []sized // every message's size and arrival, for Rate
}

type sized struct {
	n  int
	at time.Time
}

// New returns a Meter; keep makes it keep every byte, for checking the
// stream afterwards.
func New(keep bool) *Meter { return &Meter{keep: keep} }

// Add takes one message that arrived at at. Messages must hold whole
// packets, as vw's muxer sends them.
func (m *Meter) Add(b []byte, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keep {
		m.bytes = append(m.bytes, b...)
	}
	m.sizes = append(m.sizes, sized{len(b), at})
	if len(b)%ts.PacketSize != 0 {
		m.unaligned++
		return
	}
	for i := 0; i < len(b); i += ts.PacketSize {
		p := b[i : i+ts.PacketSize]
		off, ok := ts.PayloadOffset(p)
		if !ok || !ts.PayloadUnitStart(p) || !ts.HasPayload(p) || off >= ts.PacketSize {
			continue
		}
		h, err := ts.ParsePES(p[off:])
		if err != nil || h.PTS == 0 {
			continue
		}
		kind := -1
		switch {
		case ts.IsVideoStreamID(h.StreamID):
			kind = 0
		case ts.IsAudioStreamID(h.StreamID):
			kind = 1
		default:
			continue
		}
		pts := int64(ts.Timestamp(p[off+h.PTS:]))
		if m.first[kind] == 0 {
			m.first[kind] = pts + 1
		}
		// Unwrapped around the first: the 33-bit clock wraps every 26 h.
		d := (pts - (m.first[kind] - 1)) & ts.TimestampMask
		if d > ts.TimestampMask/2 {
			d -= ts.TimestampMask + 1
		}
		f := Frame{PTS: time.Duration(d) * time.Second / 90000, At: at, Raw: uint64(pts)}
		if kind == 0 {
			m.video = append(m.video, f)
		} else {
			m.audio = append(m.audio, f)
		}
	}
}

// Video returns the video frames so far, in arrival order.
func (m *Meter) Video() []Frame {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.video)
}

// Audio returns the audio frames so far, in arrival order.
func (m *Meter) Audio() []Frame {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.audio)
}

// Bytes returns every byte kept so far.
func (m *Meter) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.bytes)
}

// Rate is the bytes per second that arrived over the last span.
func (m *Meter) Rate(span time.Duration) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sizes) == 0 || span <= 0 {
		return 0
	}
	from := m.sizes[len(m.sizes)-1].at.Add(-span)
	n := 0
	for i := len(m.sizes) - 1; i >= 0 && m.sizes[i].at.After(from); i-- {
		n += m.sizes[i].n
	}
	return float64(n) / span.Seconds()
}

// Unaligned counts messages that did not hold whole packets.
func (m *Meter) Unaligned() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unaligned
}

// Lead is the least arrival-less-PTS of fs, the stream's lead when nothing
// held it back: its first PTS stands at that time.
func Lead(fs []Frame) time.Time {
	var lead time.Time
	for i, f := range fs {
		if t := f.At.Add(-f.PTS); i == 0 || t.Before(lead) {
			lead = t
		}
	}
	return lead
}

// Behind is how far behind live frame f arrived, given the stream's lead.
func Behind(f Frame, lead time.Time) time.Duration { return f.At.Sub(lead.Add(f.PTS)) }

// Live is when frame f was live: produced, by the stream's clock.
func Live(f Frame, lead time.Time) time.Time { return lead.Add(f.PTS) }

// Step is the usual PTS step between frames of fs (the median), the frame
// duration.
func Step(fs []Frame) time.Duration {
	var d []time.Duration
	for i := 1; i < len(fs); i++ {
		if s := fs[i].PTS - fs[i-1].PTS; s > 0 {
			d = append(d, s)
		}
	}
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// Arrived returns the frames of fs that arrived in [from, to).
func Arrived(fs []Frame, from, to time.Time) []Frame {
	var out []Frame
	for _, f := range fs {
		if !f.At.Before(from) && f.At.Before(to) {
			out = append(out, f)
		}
	}
	return out
}

// Worst is the most any frame of fs arrived behind live.
func Worst(fs []Frame, lead time.Time) time.Duration {
	var w time.Duration
	for _, f := range fs {
		w = max(w, Behind(f, lead))
	}
	return w
}

// Share is the fraction of the frames live in [from, to) by the stream's
// clock (one every step) that are in fs, however late.
func Share(fs []Frame, lead time.Time, step time.Duration, from, to time.Time) float64 {
	if step <= 0 || !to.After(from) {
		return 0
	}
	n := 0
	for _, f := range fs {
		if l := Live(f, lead); !l.Before(from) && l.Before(to) {
			n++
		}
	}
	return float64(n) / (float64(to.Sub(from)) / float64(step))
}

// Pair is a frame and when its reference arrived.
type Pair struct {
	Frame
	Ref time.Time
}

// Behind is how much later the frame arrived than its reference.
func (p Pair) Behind() time.Duration { return p.At.Sub(p.Ref) }

// Against pairs each frame of fs with the frame of ref that has its PTS;
// frames ref lacks are left out.
func Against(fs, ref []Frame) []Pair {
	at := make(map[uint64]time.Time, len(ref))
	for _, f := range ref {
		if _, dup := at[f.Raw]; !dup {
			at[f.Raw] = f.At
		}
	}
	var out []Pair
	for _, f := range fs {
		if r, ok := at[f.Raw]; ok {
			out = append(out, Pair{f, r})
		}
	}
	return out
}

// Delivered is the fraction of the frames of ref that arrived there in
// [from, to) that are in fs, however late.
func Delivered(fs, ref []Frame, from, to time.Time) float64 {
	got := make(map[uint64]bool, len(fs))
	for _, f := range fs {
		got[f.Raw] = true
	}
	n, in := 0, 0
	for _, f := range Arrived(ref, from, to) {
		n++
		if got[f.Raw] {
			in++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(in) / float64(n)
}
