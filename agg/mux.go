package agg

import (
	"bytes"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/ts"
)

// Output layout. The program and PIDs copy what ffmpeg writes, so a stream
// of one feed looks like that feed.
const (
	outPMTPID   = 0x1000
	outFirstPID = 0x100
	outLastPID  = outPMTPID - 1
	outProgram  = 1
	outTSID     = 1

	// maxESPerFeed bounds what a garbage feed can make us track.
	maxESPerFeed = 16

	// slabSize is the size of the blocks output messages are carved from,
	// so that a message costs no allocation of its own.
	slabSize = 64 << 10
	msgSlab  = 64
)

type kind uint8

const (
	kindOther kind = iota
	kindVideo
	kindAudio
)

// outES is an output PID: it belongs to one (feed, input PID) for the life
// of the stream, so a feed keeps its PIDs across mute and unmute, and its
// continuity counter carries on.
type outES struct {
	cc      ts.Continuity // the last one written
	last    uint64        // the last decoding timestamp written
	hasLast bool
	aac     *aacTrack // what a silent stand-in needs (silence.go); AAC only
}

type outKey struct {
	feed string
	pid  uint16
}

// es is one elementary stream of a feed.
type es struct {
	inPID  uint16
	outPID uint16
	typ    uint8
	info   []byte // ES descriptors from the feed's PMT (owned copy)
	kind   kind
	pcr    bool // carries the feed's PCR

	// Per connection.
	started   bool          // forwarding: joined at a PES start
	waitSince time.Time     // when it began waiting to join (video waits for a keyframe)
	lastCC    ts.Continuity // of the last input packet with a payload
	ccSeen    bool          // lastCC is set
	pesLeft   int           // bytes of the current PES still to come; -1 unbounded
	lastPTS   uint64        // the last input PTS, noPTS for none
	stopped   bool          // draining: this ES has reached its PES boundary

	sid byte // stream_id written into its PES headers; 0 keeps the feed's
}

// feed is one feed of the stream, as the muxer sees it.
type feed struct {
	name string
	from uint64 // the ingest connection of the current ffmpeg process

	pmtPID  int // -1 until the PAT names it
	hasPMT  bool
	pmtRaw  []byte // last PMT section applied, to skip repeats cheaply
	patR    ts.SectionReader
	pmtR    ts.SectionReader
	progs   []ts.Program
	pmtTmp  ts.PMT
	es      []*es
	seen    bool // any data since it was added
	live    bool // sent data within the grace period: its ES are in the PMT
	last    time.Time
	clockOK bool
	offset  uint64 // added to its timestamps, mod 2^33
	// bias is how far ahead of its arrival the offset put the feed when it
	// was learned: the lateness of the feeds already there, so that it
	// lines up with them.
	bias int64
	// The least lead (mapped timestamp - stream clock at arrival) of its
	// PES, over the current and the previous second: how late the feed's
	// timestamps run compared to its earliest arrivals.
	leadMin, leadPrev int64
	leadSince         time.Time

	draining   bool
	drainUntil time.Time
	removed    bool

	// Codec admission (codec.go): in the stream's PMT, or why not.
	admitted bool
	leftOut  string
}

// mux is the state of one stream's muxer. It is driven by one goroutine
// (see stream.run) and is synchronous: input, tick and the rule changes
// append output to scratch and publish it.
type mux struct {
	cfg     Config
	log     *logrus.Entry
	publish func(*hub.Message)

	feeds []*feed // rule order; draining feeds stay until their PES ends
	outs  []outES
	outOf map[outKey]uint16

	// PSI.
	version ts.Version
	pat     []byte
	pmt     []byte
	pmtNext []byte
	pmtTbl  ts.PMT
	rebuild bool // the ES set may have changed
	dirty   bool // PSI changed and must go out before anything else
	psiSent bool
	lastPSI time.Time
	patCC   ts.Continuity
	pmtCC   ts.Continuity

	// The stream clock: base + 90 kHz × (now - t0).
	clockSet bool
	t0       time.Time
	base     uint64

	scratch []byte
	slab    []byte
	msgs    []hub.Message

	left *leftOut // where admit reports the feeds left out; may be nil
	sil  silence  // the stand-in for a muted AAC track (silence.go)
}

func newMux(cfg Config, log *logrus.Entry, publish func(*hub.Message)) *mux {
	m := &mux{
		cfg:     cfg,
		log:     log,
		publish: publish,
		outOf:   make(map[outKey]uint16),
		scratch: make([]byte, 0, slabSize),
		version: 31, // the first PMT built takes version 0
	}
	m.pat = ts.AppendPAT(nil, outTSID, 0, []ts.Program{{Number: outProgram, PID: outPMTPID}})
	m.rebuild = true
	return m
}

// find returns the feed of that name still in the stream, or nil.
func (m *mux) find(name string) *feed {
	for _, f := range m.feeds {
		if f.name == name {
			return f
		}
	}
	return nil
}

// setFeeds makes names the stream's feeds, in that order. New feeds are
// added (their ES join at their next PES start); feeds no longer named
// start draining. It returns the feeds added, for the owner to subscribe.
func (m *mux) setFeeds(names []string, now time.Time) (added []*feed) {
	keep := make(map[string]int, len(names))
	for i, n := range names {
		if _, dup := keep[n]; !dup {
			keep[n] = i
		}
	}
	for _, f := range m.feeds {
		if _, ok := keep[f.name]; ok {
			f.draining = false // named again before its drain ended
		} else if !f.draining {
			m.drain(f, now)
		}
	}
	order := make([]*feed, 0, len(keep)+len(m.feeds))
	for i, n := range names {
		if keep[n] != i {
			continue
		}
		f := m.find(n)
		if f == nil {
			f = &feed{name: n, pmtPID: -1}
			added = append(added, f)
		}
		order = append(order, f)
	}
	for _, f := range m.feeds {
		if f.draining {
			order = append(order, f)
		}
	}
	m.feeds = order
	m.rebuild = true
	m.finishDrained()
	m.flushPSIIfDirty(now)
	return added
}

// drain starts removing f: each of its ES that is inside a PES carries on
// to that PES's end (jsmpeg's MP2 decoder does not survive a cut frame).
func (m *mux) drain(f *feed, now time.Time) {
	f.draining = true
	f.drainUntil = now.Add(m.cfg.DrainMax)
	for _, e := range f.es {
		e.stopped = !e.started || !f.live || e.pesLeft == 0
	}
}

// draining reports whether some removed feed is still finishing a PES.
func (m *mux) draining() bool {
	for _, f := range m.feeds {
		if f.draining {
			return true
		}
	}
	return false
}

// finishDrained removes the draining feeds whose ES have all stopped.
func (m *mux) finishDrained() {
	j := 0
	for _, f := range m.feeds {
		if f.draining && f.allStopped() {
			f.removed = true
			m.rebuild = true
			continue
		}
		m.feeds[j] = f
		j++
	}
	clear(m.feeds[j:])
	m.feeds = m.feeds[:j]
}

func (f *feed) allStopped() bool {
	for _, e := range f.es {
		if !e.stopped {
			return false
		}
	}
	return true
}

// restart forgets what belonged to the feed's previous ffmpeg process.
func (f *feed) restart(from uint64) {
	f.from = from
	f.pmtPID = -1
	f.hasPMT = false
	f.pmtRaw = f.pmtRaw[:0]
	f.patR = ts.SectionReader{}
	f.pmtR = ts.SectionReader{}
	f.clockOK = false
	for _, e := range f.es {
		e.resetConn()
	}
}

// noPTS marks an unknown PTS (real ones have 33 bits).
const noPTS = 1 << 40

func (e *es) resetConn() {
	e.lastPTS = noPTS
	e.started = false
	e.waitSince = time.Time{}
	e.ccSeen = false
	e.pesLeft = -1
}

// input muxes one message of feed f.
func (m *mux) input(f *feed, msg *hub.Message, now time.Time) {
	if f.removed {
		return
	}
	if !f.seen || msg.From != f.from {
		if f.seen {
			m.log.WithFields(logrus.Fields{"feed": f.name, "from": msg.From}).Debug("feed restarted")
		}
		f.restart(msg.From)
		f.seen = true
	}
	f.last = now
	if !f.live {
		f.live = true
		m.rebuild = true
		m.log.WithField("feed", f.name).Debug("feed live")
	}
	d := msg.Data
	for len(d) >= ts.PacketSize {
		m.packet(f, d[:ts.PacketSize], now)
		d = d[ts.PacketSize:]
	}
	if f.draining {
		m.finishDrained()
	}
	m.flushPSIIfDirty(now)
	m.flush()
}

// packet handles one input packet of f.
func (m *mux) packet(f *feed, p []byte, now time.Time) {
	off, ok := ts.PayloadOffset(p)
	if !ok || ts.TransportError(p) {
		return // malformed or known damaged
	}
	pid := ts.PID(p)
	switch {
	case pid == ts.PIDPAT:
		f.patR.Push(p, func(b []byte) { m.onPAT(f, b) })
		return
	case int(pid) == f.pmtPID:
		f.pmtR.Push(p, func(b []byte) { m.onPMT(f, b) })
		return
	case pid < 0x20 || pid == ts.PIDNull:
		return // SDT, NIT, EIT, null packets...
	}
	e := f.findES(pid)
	if e == nil {
		if f.hasPMT || !ts.PayloadUnitStart(p) || !ts.HasPayload(p) {
			return
		}
		if e = m.infer(f, pid, p[off:]); e == nil {
			return
		}
	}
	if m.blocked(f) {
		return
	}
	m.forward(f, e, p, off, now)
}

func (f *feed) findES(pid uint16) *es {
	for _, e := range f.es {
		if e.inPID == pid {
			return e
		}
	}
	return nil
}

// forward copies one media packet to the output, rewritten: output PID and
// continuity counter, timestamps on the stream clock, stream_id.
func (m *mux) forward(f *feed, e *es, p []byte, off int, now time.Time) {
	pusi := ts.PayloadUnitStart(p)
	hasPayload := ts.HasPayload(p) && off < ts.PacketSize
	if hasPayload {
		cc := ts.CC(p)
		if e.ccSeen {
			if cc == e.lastCC {
				return // duplicate packet
			}
			if cc != e.lastCC.Next() && !ts.Discontinuity(p) && !pusi && e.started {
				// Lost input (a full queue upstream): the rest of this PES
				// is damaged, so skip to the next one.
				e.started = false
				e.waitSince = now
			}
		}
		e.lastCC, e.ccSeen = cc, true
	}
	if f.draining {
		if e.stopped || !e.started || pusi {
			e.stopped = true
			return
		}
	}
	var h ts.PESHeader
	if pusi && hasPayload {
		var err error
		if h, err = ts.ParsePES(p[off:]); err != nil {
			e.started = false
			return
		}
		if !e.started {
			if e.waitSince.IsZero() {
				e.waitSince = now
			}
			if e.kind == kindVideo && !ts.RandomAccess(p) && now.Sub(e.waitSince) < m.cfg.KeyframeWait {
				return
			}
			e.started = true
			m.audioJoins(e)
		}
		e.pesLeft = -1
		if h.Length > 0 {
			e.pesLeft = h.Length + 6 - (ts.PacketSize - off)
		}
	} else {
		if !e.started {
			return
		}
		if hasPayload && e.pesLeft >= 0 {
			if e.pesLeft == 0 {
				return // more data than the PES header announced
			}
			e.pesLeft -= ts.PacketSize - off
			if e.pesLeft < 0 {
				e.pesLeft = 0
			}
		}
	}
	if _, _, ok := ts.PCR(p); ok && !e.pcr {
		e.pcr = true
		m.rebuild = true
	}
	// Timestamps first: the clock may decide to skip this PES.
	disc := false
	var pts, dec uint64
	if pusi && hasPayload && h.PTS > 0 {
		pl := p[off:]
		pts = ts.Timestamp(pl[h.PTS:])
		dec = pts // decoding order: DTS when there is one
		if h.DTS > 0 {
			dec = ts.Timestamp(pl[h.DTS:])
		}
		step := ts.TimestampDiff(dec, e.lastPTS)
		if e.lastPTS == noPTS || step < 0 {
			step = 0
		}
		e.lastPTS = dec
		var skip bool
		disc, skip = m.syncClock(f, e, int64(dec), step, now)
		if skip {
			e.started = false
			e.waitSince = now
			return
		}
		// Whatever happened to the feed (a restart, a new clock), its
		// output PID's timestamps keep going forward.
		out := (dec + f.offset) & ts.TimestampMask
		if o := &m.outs[e.outPID-outFirstPID]; o.hasLast {
			if adv := ts.TimestampDiff(out, o.last); adv <= 0 {
				bump := uint64(-adv + max(step, slewStep))
				f.offset = (f.offset + bump) & ts.TimestampMask
				out = (out + bump) & ts.TimestampMask
			}
			o.last = out
		} else {
			o.last, o.hasLast = out, true
		}
	}
	m.beforeMedia(now)

	n := len(m.scratch)
	m.scratch = append(m.scratch, p...)
	q := m.scratch[n:]
	ts.SetPID(q, e.outPID)
	o := &m.outs[e.outPID-outFirstPID]
	if hasPayload {
		o.cc = o.cc.Next()
	}
	ts.SetCC(q, o.cc)
	if pusi && hasPayload {
		pl := q[off:]
		if h.PTS > 0 {
			ts.PutTimestamp(pl[h.PTS:], pts+f.offset)
			if h.DTS > 0 {
				ts.PutTimestamp(pl[h.DTS:], dec+f.offset)
			}
		}
		if e.sid != 0 && (ts.IsAudioStreamID(h.StreamID) || ts.IsVideoStreamID(h.StreamID)) {
			pl[3] = e.sid
		}
		if e.typ == ts.TypeADTS && h.PTS > 0 && h.DataOffset < len(pl) {
			m.noteAAC(e, pl[h.DataOffset:], now)
		}
	}
	if base, ext, ok := ts.PCR(q); ok {
		if !f.clockOK {
			m.learnClock(f, int64(base), now)
		}
		ts.SetPCR(q, base+f.offset, ext)
		if disc {
			ts.SetDiscontinuity(q) // the PCR jumps: say so, as the standard asks
		}
	}
	if f.draining && e.pesLeft == 0 {
		e.stopped = true // that packet completed its PES
	}
}

// clock returns the stream clock at now.
func (m *mux) clock(now time.Time) uint64 {
	return (m.base + uint64(now.Sub(m.t0))*9/100000) & ts.TimestampMask
}

// learnClock sets f's offset so that its timestamp v maps to the stream
// clock now, plus the lead the other live feeds run with, so that media
// arriving together carries timestamps that match. The first feed to learn
// starts the stream clock at v.
func (m *mux) learnClock(f *feed, v int64, now time.Time) {
	if !m.clockSet {
		m.clockSet, m.t0, m.base = true, now, uint64(v)&ts.TimestampMask
	}
	var bias int64
	for _, g := range m.feeds {
		if g != f && g.live && g.clockOK && !g.leadSince.IsZero() {
			bias = max(bias, g.lead())
		}
	}
	f.bias = bias
	f.offset = (m.clock(now) + uint64(bias) - uint64(v)) & ts.TimestampMask
	f.clockOK = true
	f.leadSince = time.Time{}
}

// lead returns how far ahead of its earliest arrivals f's timestamps run.
func (f *feed) lead() int64 {
	return max(0, min(f.leadMin, f.leadPrev))
}

// noteLead records the lead d of one PES.
func (f *feed) noteLead(d int64, now time.Time) {
	switch {
	case f.leadSince.IsZero():
		f.leadMin, f.leadPrev, f.leadSince = d, d, now
	case now.Sub(f.leadSince) >= time.Second:
		f.leadPrev, f.leadMin, f.leadSince = f.leadMin, d, now
	default:
		f.leadMin = min(f.leadMin, d)
	}
}

// syncClock learns f's offset at its first timestamp, and again when the
// feed has fallen behind the stream clock by more than Config.Resync (it
// stalled, or its clock jumped back); it reports such a rebase. A feed
// ahead of the clock is never rebased at a stroke, which would send its
// timestamps backwards: the offset follows the earliest arrival instead. A
// PES that arrives earlier, relative to its timestamp, than the one the
// offset was learned from shows that that one was delayed (ffmpeg starting
// under load and catching up). Timestamps cannot be squeezed to catch up:
// frames would overlap, which players and ffmpeg reject. So an audio
// stream a whole frame ahead drops that frame (a whole PES: MP2 frames
// stand alone) and its feed moves back by the frame's duration; skip says
// so. Video frames depend on each other and cannot be dropped: a video
// feed keeps the offset of its first PES.
func (m *mux) syncClock(f *feed, e *es, v, step int64, now time.Time) (rebased, skip bool) {
	if !f.clockOK {
		m.learnClock(f, v, now)
		return false, false
	}
	d := ts.TimestampDiff(uint64(v)+f.offset, m.clock(now))
	f.noteLead(d, now)
	d -= f.bias
	if limit := int64(m.cfg.Resync / (time.Second / 90000)); d < -limit {
		m.log.WithFields(logrus.Fields{"feed": f.name, "offMs": d / 90}).Debug("feed clock fell behind: rebasing")
		m.learnClock(f, v, now)
		return true, false
	}
	if d <= 0 {
		return false, false
	}
	if e.kind == kindAudio && step > 0 && d >= step {
		f.offset = (f.offset - uint64(step)) & ts.TimestampMask
		return false, true
	}
	return false, false
}

// slewStep is the least an output PID's timestamps advance when a feed's
// rebase would have sent them backwards and the PES spacing is unknown.
const slewStep = 450

// infer makes an ES of a PID seen in a feed that has sent no PMT, from the
// stream_id of the PES starting in payload.
func (m *mux) infer(f *feed, pid uint16, payload []byte) *es {
	h, err := ts.ParsePES(payload)
	if err != nil {
		return nil
	}
	var typ uint8
	es := payload[h.DataOffset:]
	if h.DataOffset > len(payload) {
		es = nil
	}
	switch {
	case ts.IsVideoStreamID(h.StreamID):
		typ = 0x02 // MPEG-1/2 video, as ffmpeg labels mpeg1video
		if looksH264(es) {
			typ = 0x1b
		}
	case ts.IsAudioStreamID(h.StreamID):
		typ = 0x03 // MPEG-1 audio
		if len(es) >= 2 && es[0] == 0xff && es[1]&0xf6 == 0xf0 {
			typ = 0x0f // ADTS AAC: layer bits 00
		}
	default:
		return nil
	}
	e := m.newES(f, pid, typ, nil)
	if e != nil {
		m.log.WithFields(logrus.Fields{"feed": f.name, "pid": pid, "type": typ}).Debug("feed sent no PMT: stream inferred from its PES")
	}
	return e
}

// looksH264 reports whether b starts with an H.264 NAL unit (an access
// unit delimiter or parameter set) rather than an MPEG video start code.
func looksH264(b []byte) bool {
	if len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 1 {
		b = b[1:]
	}
	if len(b) < 4 || b[0] != 0 || b[1] != 0 || b[2] != 1 {
		return false
	}
	switch b[3] & 0x1f {
	case 9, 7, 6, 5:
		return b[3]&0x80 == 0
	}
	return false
}

// newES adds an ES to f, with its output PID. It returns nil when f has too
// many or the stream has run out of PIDs.
func (m *mux) newES(f *feed, pid uint16, typ uint8, info []byte) *es {
	if len(f.es) >= maxESPerFeed {
		return nil
	}
	k := outKey{f.name, pid}
	out, ok := m.outOf[k]
	if !ok {
		if len(m.outs) > outLastPID-outFirstPID {
			return nil
		}
		out = uint16(outFirstPID + len(m.outs))
		m.outs = append(m.outs, outES{cc: 15})
		m.outOf[k] = out
	}
	e := &es{inPID: pid, outPID: out, pesLeft: -1, lastPTS: noPTS}
	e.setType(typ, info)
	f.es = append(f.es, e)
	m.rebuild = true
	return e
}

func (e *es) setType(typ uint8, info []byte) {
	e.typ = typ
	e.info = append(e.info[:0], info...)
	switch {
	case ts.IsVideoType(typ):
		e.kind = kindVideo
	case ts.IsAudioType(typ):
		e.kind = kindAudio
	default:
		e.kind = kindOther
	}
}

func (m *mux) onPAT(f *feed, b []byte) {
	s, _, err := ts.ParseSection(b)
	if err != nil || s.TableID != ts.TablePAT || !s.CurrentNext {
		return
	}
	if f.progs, err = ts.ParsePAT(s, f.progs[:0]); err != nil {
		return
	}
	for _, p := range f.progs {
		if p.Number != 0 {
			if int(p.PID) != f.pmtPID {
				f.pmtPID = int(p.PID)
				f.pmtR = ts.SectionReader{}
				f.pmtRaw = f.pmtRaw[:0]
			}
			return
		}
	}
}

func (m *mux) onPMT(f *feed, b []byte) {
	if f.hasPMT && bytes.Equal(b, f.pmtRaw) {
		return // ffmpeg repeats it every 100 ms
	}
	s, _, err := ts.ParseSection(b)
	if err != nil || s.TableID != ts.TablePMT || !s.CurrentNext {
		return
	}
	if err := ts.ParsePMT(s, &f.pmtTmp); err != nil {
		return
	}
	f.pmtRaw = append(f.pmtRaw[:0], b...)
	f.hasPMT = true
	var keep [maxESPerFeed]*es
	n := 0
	for _, st := range f.pmtTmp.Streams {
		if st.PID < 0x20 || st.PID == ts.PIDNull || int(st.PID) == f.pmtPID || n == len(keep) {
			continue
		}
		e := f.findES(st.PID)
		if e == nil {
			if e = m.newES(f, st.PID, st.Type, st.Info); e == nil {
				continue
			}
		} else if e.typ != st.Type || !bytes.Equal(e.info, st.Info) {
			e.setType(st.Type, st.Info)
		}
		e.pcr = e.pcr || st.PID == f.pmtTmp.PCRPID
		dup := false
		for _, k := range keep[:n] {
			dup = dup || k == e
		}
		if !dup {
			keep[n] = e
			n++
		}
	}
	f.es = append(f.es[:0], keep[:n]...)
	m.rebuild = true
}

// buildPMT recomputes the output PMT from the live feeds and bumps its
// version if it changed. It also assigns stream_ids: the first video and
// audio (in rule order) keep 0xE0 and 0xC0, which jsmpeg plays; later ones
// get 0xE1, 0xC1...
func (m *mux) buildPMT() {
	m.rebuild = false
	m.admit()
	t := &m.pmtTbl
	t.Program = outProgram
	t.PCRPID = ts.PIDNull
	t.Info = nil
	t.Streams = t.Streams[:0]
	var pcrAny uint16
	var video, audio byte
	for _, f := range m.feeds {
		if !f.live || f.leftOut != "" {
			continue
		}
		for _, e := range f.es {
			t.Streams = append(t.Streams, ts.Stream{Type: e.typ, PID: e.outPID, Info: e.info})
			switch e.kind {
			case kindVideo:
				if video == 0 {
					t.PCRPID = e.outPID
				}
				e.sid = 0xe0 + min(video, 0x0f)
				video++
			case kindAudio:
				e.sid = 0xc0 + min(audio, 0x1f)
				audio++
			default:
				e.sid = 0
			}
			if e.pcr && pcrAny == 0 {
				pcrAny = e.outPID
			}
		}
	}
	m.decideSilence(t)
	if t.PCRPID == ts.PIDNull {
		if pcrAny != 0 {
			t.PCRPID = pcrAny
		} else if len(t.Streams) > 0 {
			t.PCRPID = t.Streams[0].PID
		}
	}
	t.Version = uint8(m.version)
	m.pmtNext = ts.AppendPMT(m.pmtNext[:0], t)
	if m.pmt != nil && bytes.Equal(m.pmtNext, m.pmt) {
		return
	}
	m.version = m.version.Next()
	t.Version = uint8(m.version)
	m.pmtNext = ts.AppendPMT(m.pmtNext[:0], t)
	m.pmt, m.pmtNext = m.pmtNext, m.pmt
	m.dirty = true
	m.log.WithFields(logrus.Fields{"version": m.version, "streams": len(t.Streams)}).Debug("PMT changed")
}

// beforeMedia puts PAT and PMT out first when they changed or are due.
func (m *mux) beforeMedia(now time.Time) {
	if m.rebuild {
		m.buildPMT()
	}
	if m.dirty || !m.psiSent || now.Sub(m.lastPSI) >= m.cfg.PSIInterval {
		m.appendPSI(now)
	}
}

// flushPSIIfDirty sends a changed PAT/PMT at once, even with no media to
// follow (a feed removed or gone silent).
func (m *mux) flushPSIIfDirty(now time.Time) {
	if m.rebuild {
		m.buildPMT()
	}
	if m.dirty && m.psiSent {
		m.appendPSI(now)
		m.flush()
	}
}

func (m *mux) appendPSI(now time.Time) {
	m.scratch, m.patCC = ts.AppendSectionPackets(m.scratch, ts.PIDPAT, m.patCC, m.pat)
	m.scratch, m.pmtCC = ts.AppendSectionPackets(m.scratch, outPMTPID, m.pmtCC, m.pmt)
	m.lastPSI = now
	m.dirty = false
	m.psiSent = true
}

// flush publishes what scratch holds as one message, carved from a slab.
func (m *mux) flush() {
	n := len(m.scratch)
	if n == 0 {
		return
	}
	if cap(m.slab)-len(m.slab) < n {
		m.slab = make([]byte, 0, max(slabSize, n))
	}
	start := len(m.slab)
	m.slab = append(m.slab, m.scratch...)
	if len(m.msgs) == 0 {
		m.msgs = make([]hub.Message, msgSlab)
	}
	msg := &m.msgs[0]
	m.msgs = m.msgs[1:]
	msg.Data = m.slab[start:len(m.slab):len(m.slab)]
	m.scratch = m.scratch[:0]
	m.publish(msg)
}

// tick handles time: feeds gone silent leave the PMT, drains that took too
// long end, and PAT/PMT repeat while anything is live.
func (m *mux) tick(now time.Time) {
	anyLive := false
	for _, f := range m.feeds {
		if f.live && now.Sub(f.last) >= m.cfg.Grace {
			f.live = false
			m.rebuild = true
			for _, e := range f.es {
				e.resetConn()
			}
			m.log.WithField("feed", f.name).Info("feed silent: left the stream until it returns")
		}
		if f.draining && (!f.live || !now.Before(f.drainUntil)) {
			for _, e := range f.es {
				e.stopped = true
			}
		}
		anyLive = anyLive || f.live
	}
	m.finishDrained()
	if m.rebuild {
		m.buildPMT()
	}
	if m.psiSent && (m.dirty || (anyLive && now.Sub(m.lastPSI) >= m.cfg.PSIInterval)) {
		m.appendPSI(now)
		m.flush()
	}
	m.emitSilence(now)
}

// deadline returns when tick must next run; zero for never.
func (m *mux) deadline() time.Time {
	var d time.Time
	earliest := func(t time.Time) {
		if d.IsZero() || t.Before(d) {
			d = t
		}
	}
	anyLive := false
	for _, f := range m.feeds {
		if f.live {
			anyLive = true
			earliest(f.last.Add(m.cfg.Grace))
		}
		if f.draining {
			earliest(f.drainUntil)
		}
	}
	if anyLive && m.psiSent {
		earliest(m.lastPSI.Add(m.cfg.PSIInterval))
	}
	if t := m.silenceDue(); !t.IsZero() {
		earliest(t)
	}
	return d
}
