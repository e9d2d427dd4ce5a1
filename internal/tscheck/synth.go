package tscheck

import "github.com/vwlab/vw/ts"

// Synth writes a feed the way ffmpeg does, without ffmpeg: one elementary
// stream on PID 0x100 (which also carries the PCR), PAT and PMT (PID
// 0x1000) before the first frame and every 100 ms, continuity counters from
// 0. Video frames are 25 per second, unbounded PES, a keyframe every 12
// (flagged random access, and starting as ffmpeg's do: MPEG-1 with a
// sequence header and a GOP header, H.264 with an SPS and a PPS before an
// IDR slice); audio frames are MP2-sized (1152 samples at 44.1 kHz, 209
// bytes) with a bounded PES. Payload bytes are filler: good enough for
// the muxer and parsers, not for a decoder.
type Synth struct {
	Video bool
	// NoPMT leaves PAT and PMT out, like a feed that never sends them.
	NoPMT bool
	// FrameSize is the video frame size in bytes (default 2500).
	FrameSize int
	// H264 makes it an H.264 video or AAC audio feed (ADTS, 1024 samples
	// at 48 kHz, mono) instead of MPEG-1 video or MP2 audio.
	H264 bool
	// KeyEvery is the number of video frames from one keyframe to the next
	// (default 12).
	KeyEvery int
	// PMTVersion is the version the PMT is written with; change it to
	// announce a new PMT, as a muxer does when its streams change.
	PMTVersion uint8

	pts      uint64
	frame    int
	cc       ts.Continuity
	patCC    ts.Continuity
	pmtCC    ts.Continuity
	sinceTab uint64
	started  bool
}

// NewSynth returns a video or audio feed whose clock starts at pts.
func NewSynth(video bool, pts uint64) *Synth {
	return &Synth{Video: video, pts: pts}
}

// Frame is the duration of one frame in 90 kHz ticks.
func (s *Synth) Frame() uint64 {
	switch {
	case s.Video:
		return 3600
	case s.H264:
		return 1920 // 1024 / 48000 s
	}
	return 2351 // 1152 / 44100 s
}

// PTS returns the PTS of the next frame.
func (s *Synth) PTS() uint64 { return s.pts }

// Append appends the packets of the next n frames (with PSI when due).
func (s *Synth) Append(dst []byte, n int) []byte {
	for range n {
		if !s.NoPMT && (!s.started || s.sinceTab >= 9000) {
			dst = s.appendPSI(dst)
			s.sinceTab = 0
		}
		s.started = true
		dst = s.appendFrame(dst)
		s.sinceTab += s.Frame()
		s.pts = (s.pts + s.Frame()) & ts.TimestampMask
		s.frame++
	}
	return dst
}

func (s *Synth) appendPSI(dst []byte) []byte {
	typ := uint8(0x03)
	switch {
	case s.Video && s.H264:
		typ = 0x1b
	case s.Video:
		typ = 0x02
	case s.H264:
		typ = 0x0f
	}
	dst, s.patCC = ts.AppendSectionPackets(dst, 0, s.patCC, ts.AppendPAT(nil, 1, 0, []ts.Program{{Number: 1, PID: 0x1000}}))
	pmt := ts.PMT{Program: 1, Version: s.PMTVersion & 0x1f, PCRPID: 0x100, Streams: []ts.Stream{{Type: typ, PID: 0x100}}}
	dst, s.pmtCC = ts.AppendSectionPackets(dst, 0x1000, s.pmtCC, ts.AppendPMT(nil, &pmt))
	return dst
}

// key reports whether the next video frame is a keyframe.
func (s *Synth) key() bool {
	every := s.KeyEvery
	if every <= 0 {
		every = 12
	}
	return s.frame%every == 0
}

// appendFrame writes one PES: the first packet has an adaptation field with
// the PCR (and random access on keyframes), the last is padded with
// adaptation stuffing, as ffmpeg does. It is one function because the PES
// is laid out packet by packet in stream order, as a muxer writes it.
func (s *Synth) appendFrame(dst []byte) []byte {
	sid := byte(0xc0)
	size := 209
	if s.Video {
		sid = 0xe0
		size = s.FrameSize
		if size <= 0 {
			size = 2500
		}
	}
	pes := make([]byte, 0, 14+size)
	plen := 0
	if !s.Video {
		plen = 8 + size
	}
	pes = append(pes, 0, 0, 1, sid, byte(plen>>8), byte(plen), 0x80, 0x80, 5, 0x21, 0, 1, 0, 1)
	ts.PutTimestamp(pes[9:], s.pts)
	var start []byte // the elementary stream's first bytes; filler follows
	switch {
	case s.Video && s.H264 && s.key():
		// An access unit delimiter, an SPS, a PPS and an IDR slice, as x264
		// begins a keyframe.
		start = []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e,
			0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88}
	case s.Video && s.H264:
		start = []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x41, 0x9a} // a delimiter, a non-IDR slice
	case s.Video && s.key():
		// A sequence header (320x240, 25 fps) and a GOP header first.
		start = []byte{0, 0, 1, 0xb3, 0x14, 0x00, 0xf0, 0x13, 0xff, 0xff, 0xe0, 0x18,
			0, 0, 1, 0xb8, 0x00, 0x08, 0x00, 0x40, 0, 0, 1, 0x00}
	case s.Video:
		start = []byte{0, 0, 1, 0x00} // a picture start code
	case s.H264:
		start = []byte{0xff, 0xf1, 0x4c, 0x40, byte(size >> 3), byte(size<<5) | 0x1f, 0xfc} // ADTS: LC, 48 kHz, mono
	default:
		start = []byte{0xff, 0xfd} // an MPEG-1 layer II header
	}
	for i := range size {
		if i < len(start) {
			pes = append(pes, start[i])
		} else {
			pes = append(pes, byte(i*31+s.frame)&0x7f)
		}
	}
	first := true
	for len(pes) > 0 {
		p := make([]byte, ts.PacketSize)
		p[0] = ts.SyncByte
		p[1], p[2] = 0x01, 0x00
		if first {
			p[1] |= 0x40
		}
		hdr := 4
		var af []byte
		if first {
			flags := byte(0x10)
			if s.Video && s.key() {
				flags |= 0x40
			}
			af = []byte{flags, 0, 0, 0, 0, 0, 0}
		}
		room := ts.PacketSize - hdr
		if af != nil {
			room -= 1 + len(af)
		}
		if len(pes) < room {
			// Stuff the adaptation field so the payload ends the packet.
			need := room - len(pes)
			if af == nil {
				af = []byte{}
				if need == 1 {
					need = 0 // the length byte alone fills it
				} else {
					af = append(af, 0) // flags, then need-2 stuffing bytes
					need -= 2
				}
			}
			for range need {
				af = append(af, 0xff)
			}
			room = len(pes)
		}
		if af != nil {
			p[3] = 0x30
			p[4] = byte(len(af))
			copy(p[5:], af)
			hdr = 5 + len(af)
		} else {
			p[3] = 0x10
		}
		copy(p[hdr:], pes[:room])
		pes = pes[room:]
		if first && p[4] >= 7 {
			ts.SetPCR(p, s.pts, 0)
		}
		ts.SetCC(p, s.cc)
		s.cc = s.cc.Next()
		first = false
		dst = append(dst, p...)
	}
	return dst
}
