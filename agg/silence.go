package agg

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/ts"
)

// A browser playing H.264/AAC through Media Source Extensions stops the
// whole video element when one of its tracks runs dry, so in an H.264
// stream a mute cannot just drop the audio feed as it does for jsmpeg:
// the picture would freeze. Instead the muxer keeps the AAC track, on the
// same PID and in the same PMT, and fills it with silent frames of the
// same configuration, paced on the stream clock with the lead the real
// audio had. When a live AAC track starts again (the unmute), the silence
// stops before that track's first PES, so the switch falls on a frame
// boundary; the output PID's timestamps keep going forward either way.

// maxSilenceBurst bounds how much silence goes out at once when it starts
// late (the audio feed went quiet for a while): beyond it, the track jumps.
const maxSilenceBurst = 3 * time.Second

// aacTrack is what the muxer remembers of an output PID carrying AAC, for
// the silence that may have to stand in for it.
type aacTrack struct {
	cfg  adtsConfig
	ok   bool   // cfg read off a real frame
	prev uint64 // the PTS of the PES before the last
	step uint64 // PTS step between the last two PES
	lead int64  // how far ahead of the stream clock its last PES ran
}

// silence is the muxer's silent stand-in for a muted AAC track.
type silence struct {
	pid     uint16 // the AAC PID last forwarded: the candidate
	on      bool   // in the PMT
	started bool   // pacing set up (on the first emit after on)
	cfg     adtsConfig
	frame   []byte // one silent ADTS frame
	pts0    uint64
	n       int       // frames sent since pts0
	startAt time.Time // when frame 0 was due
	warned  bool      // said once that this track cannot be stood in for
	info    []byte    // the PMT descriptors of the track
	buf     [ts.PacketSize]byte
}

// noteAAC learns from a PES of an AAC output PID that was just forwarded:
// the configuration from the ADTS header its data starts with, the PES
// spacing, and its lead over the stream clock.
func (m *mux) noteAAC(e *es, data []byte, now time.Time) {
	o := &m.outs[e.outPID-outFirstPID]
	if o.aac == nil {
		o.aac = &aacTrack{}
	}
	a := o.aac
	if cfg, ok := parseADTS(data); ok {
		a.cfg, a.ok = cfg, true
	}
	if d := ts.TimestampDiff(o.last, a.prev); a.prev != 0 && d > 0 && d < 90000 {
		a.step = uint64(d)
	}
	a.prev = o.last
	a.lead = ts.TimestampDiff(o.last, m.clock.at(now))
	m.sil.pid = e.outPID
	m.sil.info = append(m.sil.info[:0], e.info...)
}

// audioJoins is called when an ES starts forwarding: a live AAC track ends
// the silence before its first packet leaves.
func (m *mux) audioJoins(e *es) {
	if e.typ == ts.TypeADTS && m.sil.on {
		m.psi.rebuild = true
	}
}

// decideSilence runs while the PMT is built (t holds the streams of the
// live feeds): silence stands in for the last AAC track while the stream
// has H.264 video and no AAC track that is forwarding.
func (m *mux) decideSilence(t *ts.PMT) {
	s := &m.sil
	video, audio := false, false
	for _, f := range m.feeds {
		if !f.live || f.leftOut != "" {
			continue
		}
		for _, e := range f.es {
			video = video || e.typ == ts.TypeH264
			audio = audio || (e.typ == ts.TypeADTS && e.started)
		}
	}
	want := s.pid != 0 && video && !audio
	if want {
		a := m.outs[s.pid-outFirstPID].aac
		if a == nil || !a.ok || !a.cfg.silentOK() {
			if !s.warned {
				s.warned = true
				m.log.WithField("pid", s.pid).Warn("the muted AAC track is not LC mono or stereo: no silence stands in for it, and browsers may freeze the picture")
			}
			want = false
		}
	}
	if want != s.on {
		s.on, s.started = want, false
		m.log.WithFields(logrus.Fields{"pid": s.pid, "on": want}).Debug("silent AAC stand-in")
	}
	if !s.on {
		return
	}
	for _, st := range t.Streams {
		if st.PID == s.pid {
			return // the track's own feed is back and lists it
		}
	}
	t.Streams = append(t.Streams, ts.Stream{Type: ts.TypeADTS, PID: s.pid, Info: s.info})
}

// startSilence sets up the pacing at the first emit: frame 0 follows the
// last real PES, and each frame is due when the stream clock plus the
// track's lead reaches its PTS.
func (m *mux) startSilence(now time.Time) {
	s := &m.sil
	o := &m.outs[s.pid-outFirstPID]
	a := o.aac
	s.cfg = a.cfg
	s.frame = appendSilentADTS(s.frame[:0], a.cfg)
	step := a.step
	if step == 0 {
		step = uint64(samplesPerFrame * 90000 / a.cfg.rate())
	}
	s.pts0 = (o.last + step) & ts.TimestampMask
	s.n = 0
	ahead := ts.TimestampDiff(s.pts0, m.clock.at(now)+uint64(a.lead))
	s.startAt = now.Add(time.Duration(ahead) * time.Second / 90000)
	s.started = true
}

// frameTime is how far after frame 0 frame n is due.
func (s *silence) frameTime(n int) time.Duration {
	return time.Duration(n) * samplesPerFrame * time.Second / time.Duration(s.cfg.rate())
}

// emitSilence sends the silent frames due by now, each as one PES.
func (m *mux) emitSilence(now time.Time) {
	s := &m.sil
	if !s.on {
		return
	}
	if !s.started {
		m.startSilence(now)
	}
	if late := now.Sub(s.startAt.Add(s.frameTime(s.n))); late > maxSilenceBurst {
		s.n += int((late - maxSilenceBurst) * time.Duration(s.cfg.rate()) / (samplesPerFrame * time.Second))
	}
	sent := false
	for s.on && !s.startAt.Add(s.frameTime(s.n)).After(now) {
		m.putPSI(now, mediaFollows)
		if !s.on { // the PMT built just now ended it
			break
		}
		pts := (s.pts0 + uint64(s.n)*samplesPerFrame*90000/uint64(s.cfg.rate())) & ts.TimestampMask
		m.appendSilentPES(pts)
		s.n++
		sent = true
	}
	if sent {
		m.flush()
	}
}

// appendSilentPES writes one silent frame as a PES in one packet, padded
// with adaptation-field stuffing, on the track's PID and counter.
func (m *mux) appendSilentPES(pts uint64) {
	s := &m.sil
	o := &m.outs[s.pid-outFirstPID]
	pes := append(s.buf[:0], 0, 0, 1, 0xc0, 0, 0, 0x84, 0x80, 5, 0x21, 0, 1, 0, 1)
	ts.PutTimestamp(pes[9:], pts)
	pes = append(pes, s.frame...)
	n := len(pes) - 6
	pes[4], pes[5] = byte(n>>8), byte(n)

	o.cc = o.cc.Next()
	m.scratch = append(m.scratch, ts.SyncByte, 0x40|byte(s.pid>>8), byte(s.pid), 0x30|byte(o.cc))
	af := ts.PacketSize - 5 - len(pes)
	m.scratch = append(m.scratch, byte(af))
	if af > 0 {
		m.scratch = append(m.scratch, 0)
		for range af - 1 {
			m.scratch = append(m.scratch, 0xff)
		}
	}
	m.scratch = append(m.scratch, pes...)
	o.last, o.hasLast = pts, true
}

// silenceDue is when emitSilence must next run; zero for never.
func (m *mux) silenceDue() time.Time {
	s := &m.sil
	switch {
	case !s.on:
		return time.Time{}
	case !s.started:
		return m.clock.t0 // at once
	}
	return s.startAt.Add(s.frameTime(s.n))
}
