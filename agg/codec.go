package agg

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/ts"
)

// ErrCodecMix refuses a stream rule whose feeds cannot play as one stream:
// MPEG-1/MP2 and H.264/AAC mixed (each family has its own player), or two
// H.264 or two AAC tracks (the browser's player plays one of each).
var ErrCodecMix = errors.New("feeds do not mix")

// mixer collects the tracks of a stream's feeds, feed by feed, and says
// why a feed's tracks cannot join those already in.
type mixer struct {
	family ts.Family
	by     string // the feed that set the family, and its codec
	byName string
	// The feeds holding the H.264 video and the AAC track.
	video, audio string
}

// add admits the tracks (PMT stream types) of feed, or returns why not and
// admits none of them.
func (x *mixer) add(feed string, types []uint8) error {
	y := *x
	for _, t := range types {
		fam := ts.FamilyOf(t)
		if fam == ts.FamilyNone {
			continue
		}
		if y.family == ts.FamilyNone {
			y.family, y.by, y.byName = fam, feed, ts.CodecName(t)
		} else if fam != y.family {
			return fmt.Errorf("%w: feed %q is %s (%s) but feed %q is %s (%s): a stream is either MPEG-1/MP2 or H.264/AAC",
				ErrCodecMix, feed, ts.CodecName(t), fam.Title(), y.by, y.byName, y.family.Title())
		}
		if fam != ts.FamilyH264 {
			continue // jsmpeg plays the first of each kind and ignores the others
		}
		slot := &y.video
		if t == ts.TypeADTS {
			slot = &y.audio
		}
		switch {
		case *slot == feed:
			return fmt.Errorf("%w: feed %q carries two %s tracks: a browser plays one of each kind", ErrCodecMix, feed, ts.CodecName(t))
		case *slot != "":
			return fmt.Errorf("%w: feeds %q and %q both carry %s: a browser plays one track of each kind", ErrCodecMix, *slot, feed, ts.CodecName(t))
		}
		*slot = feed
	}
	*x = y
	return nil
}

// feedCodecs knows what each connected feed carries, from the PMT its
// ffmpeg last sent, so that a rule can be checked before it is in force.
type feedCodecs struct {
	mu    sync.Mutex
	feeds map[string]feedEntry
}

type feedEntry struct {
	from  uint64 // the ingest that reported it
	types []uint8
}

func (c *feedCodecs) set(feed string, from uint64, types []uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.feeds == nil {
		c.feeds = make(map[string]feedEntry)
	}
	c.feeds[feed] = feedEntry{from: from, types: types}
}

func (c *feedCodecs) forget(feed string, from uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.feeds[feed]; ok && e.from == from {
		delete(c.feeds, feed)
	}
}

// check returns why feeds, in rule order, cannot form one stream, as far as
// their PMTs are known; feeds not connected yet are checked by the muxer
// when they are.
func (c *feedCodecs) check(feeds []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var x mixer
	for _, f := range feeds {
		if e, ok := c.feeds[f]; ok {
			if err := x.add(f, e.types); err != nil {
				return err
			}
		}
	}
	return nil
}

// FeedWatcher learns what one ingest connection's feed carries by reading
// the PAT and PMT among its packets. It belongs to the ingest's goroutine;
// Close forgets what it learned.
type FeedWatcher struct {
	c      *feedCodecs
	feed   string
	from   uint64
	pmtPID int
	patR   ts.SectionReader
	pmtR   ts.SectionReader
	raw    []byte
	progs  []ts.Program
	pmt    ts.PMT
}

// WatchFeed returns a watcher for the ingest connection from of feed.
func (a *Agg) WatchFeed(feed string, from uint64) *FeedWatcher {
	return &FeedWatcher{c: &a.codecs, feed: feed, from: from, pmtPID: -1}
}

// Observe reads whole, aligned packets. Only PAT and PMT packets cost more
// than a look at their PID, and a repeated PMT is recognised by its bytes.
func (w *FeedWatcher) Observe(pkts []byte) {
	for i := 0; i+ts.PacketSize <= len(pkts); i += ts.PacketSize {
		p := pkts[i : i+ts.PacketSize]
		switch pid := ts.PID(p); {
		case pid == ts.PIDPAT:
			w.patR.Push(p, w.onPAT)
		case int(pid) == w.pmtPID:
			w.pmtR.Push(p, w.onPMT)
		}
	}
}

func (w *FeedWatcher) onPAT(b []byte) {
	s, _, err := ts.ParseSection(b)
	if err != nil || s.TableID != ts.TablePAT || !s.CurrentNext {
		return
	}
	if w.progs, err = ts.ParsePAT(s, w.progs[:0]); err != nil {
		return
	}
	for _, p := range w.progs {
		if p.Number != 0 {
			if int(p.PID) != w.pmtPID {
				w.pmtPID, w.pmtR, w.raw = int(p.PID), ts.SectionReader{}, w.raw[:0]
			}
			return
		}
	}
}

func (w *FeedWatcher) onPMT(b []byte) {
	if len(w.raw) > 0 && slices.Equal(b, w.raw) {
		return // ffmpeg repeats it every 100 ms
	}
	s, _, err := ts.ParseSection(b)
	if err != nil || s.TableID != ts.TablePMT || !s.CurrentNext || ts.ParsePMT(s, &w.pmt) != nil {
		return
	}
	w.raw = append(w.raw[:0], b...)
	types := make([]uint8, 0, len(w.pmt.Streams))
	for _, st := range w.pmt.Streams {
		types = append(types, st.Type)
	}
	w.c.set(w.feed, w.from, types)
}

// Close forgets the feed's codecs, unless a newer connection of the feed
// has reported since: an ffmpeg that stopped may come back with others.
func (w *FeedWatcher) Close() { w.c.forget(w.feed, w.from) }

// FeedStatus is what the API lists of a connected feed.
type FeedStatus struct {
	// Codecs are the feed's tracks, as ffprobe names them, from its PMT.
	Codecs []string `json:"codecs"`
	// LeftOut maps the streams the feed is left out of to the reason.
	LeftOut map[string]string `json:"leftOut,omitempty"`
}

// Feeds returns every connected feed whose PMT has arrived, with its codecs
// and the streams that leave it out.
func (a *Agg) Feeds() map[string]FeedStatus {
	out := make(map[string]FeedStatus)
	a.codecs.mu.Lock()
	for name, e := range a.codecs.feeds {
		fs := FeedStatus{Codecs: []string{}}
		for _, t := range e.types {
			fs.Codecs = append(fs.Codecs, ts.CodecName(t))
		}
		out[name] = fs
	}
	a.codecs.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	for stream, s := range a.streams {
		for feed, why := range s.left.all() {
			fs := out[feed]
			if fs.LeftOut == nil {
				fs.LeftOut = make(map[string]string)
			}
			fs.LeftOut[stream] = why
			out[feed] = fs
		}
	}
	return out
}

// leftOut holds, for one stream, the feeds its muxer leaves out and why.
// The muxer goroutine writes it; the API reads it.
type leftOut struct {
	mu sync.Mutex
	m  map[string]string
}

func (l *leftOut) replace(m map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m = m
}

func (l *leftOut) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

func (l *leftOut) all() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.m)
}

// admit decides which live feeds the muxer muxes. A feed already in keeps
// its place; then the others, in rule order, join if their tracks mix with
// those in (see mixer). A feed that cannot is left out, with the reason
// logged and reported, until what blocks it leaves. Run whenever a feed's
// tracks or liveness change, before the PMT is built.
func (m *mux) admit() {
	order := make([]*feed, 0, len(m.feeds))
	for _, in := range []bool{true, false} {
		for _, f := range m.feeds {
			if f.live && f.admitted == in {
				order = append(order, f)
			}
		}
	}
	var x mixer
	var types []uint8
	changed := false
	for _, f := range order {
		types = types[:0]
		for _, e := range f.es {
			types = append(types, e.typ)
		}
		why := ""
		if err := x.add(f.name, types); err != nil {
			why = err.Error()
		}
		m.setLeftOut(f, why)
	}
	for _, f := range m.feeds {
		if !f.live {
			changed = m.setLeftOut(f, "") || changed
			f.admitted = false
		}
	}
	if m.left != nil && (changed || m.left.count() != m.leftOutCount()) {
		l := make(map[string]string)
		for _, f := range m.feeds {
			if f.leftOut != "" {
				l[f.name] = f.leftOut
			}
		}
		m.left.replace(l)
	}
}

func (m *mux) leftOutCount() (n int) {
	for _, f := range m.feeds {
		if f.leftOut != "" {
			n++
		}
	}
	return n
}

// setLeftOut records why f is left out ("": it is in) and reports whether
// that changed.
func (m *mux) setLeftOut(f *feed, why string) bool {
	f.admitted = why == ""
	if why == f.leftOut {
		return false
	}
	if why != "" {
		m.log.WithFields(logrus.Fields{"feed": f.name, "err": why}).Warn("feed left out of the stream")
		for _, e := range f.es {
			e.started = false // it rejoins at a PES start
			e.waitSince = time.Time{}
		}
	} else if f.leftOut != "" {
		m.log.WithField("feed", f.name).Info("feed joins the stream: what kept it out has gone")
	}
	f.leftOut = why
	return true
}

// blocked reports whether f's media must not go out: the feed is left out
// of the stream. The decision is brought up to date first, so that the
// first packet of a feed that just went live is judged too.
func (m *mux) blocked(f *feed) bool {
	if m.psi.rebuild {
		m.buildPMT()
	}
	return f.leftOut != ""
}

// Family returns the codec family of a stream rule's feeds or, when there is
// no rule of that name, of the feed itself, as far as their PMTs are known
// (FamilyNone otherwise): which player a preview of it needs.
func (a *Agg) Family(name string) ts.Family {
	feeds, ok := a.Get(name)
	if !ok {
		feeds = []string{name}
	}
	a.codecs.mu.Lock()
	defer a.codecs.mu.Unlock()
	for _, f := range feeds {
		for _, t := range a.codecs.feeds[f].types {
			if fam := ts.FamilyOf(t); fam != ts.FamilyNone {
				return fam
			}
		}
	}
	return ts.FamilyNone
}
