package api

import (
	"bytes"
	"context"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/ts"
)

// Track is one elementary stream of a feed, as the status page shows it.
type Track struct {
	Kind  string `json:"kind"`  // video, audio or data
	Codec string `json:"codec"` // as ffprobe names it (ts.CodecName): mpeg1video, mp2, h264, aac, ...
	// Width and Height are known for MPEG-1/2 video (from its sequence
	// header); zero otherwise.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
}

// probe reads a feed's packets from sub until it knows its tracks (from its
// PAT and PMT) and the size of its MPEG video (from a sequence header, sent
// at every keyframe), or until ctx ends or stop closes. It looks at a copy
// of the feed for a few seconds, once per POST, when someone asks for the
// status: nothing is added to the path of the packets. It returns the
// tracks found (nil if no PMT came) and whether it found everything.
func probe(ctx context.Context, stop <-chan struct{}, sub *hub.Sub) ([]Track, bool) {
	p := prober{pmtPID: -1, video: map[uint16]int{}}
	for {
		select {
		case <-ctx.Done():
			return p.tracks, false
		case <-stop:
			return p.tracks, false
		case <-sub.Done():
			return p.tracks, false
		case m := <-sub.C():
			for b := m.Data; len(b) >= ts.PacketSize; b = b[ts.PacketSize:] {
				p.packet(b[:ts.PacketSize])
			}
			if p.done() {
				return p.tracks, true
			}
		}
	}
}

// prober is what probe has learnt so far.
type prober struct {
	pat, pmt ts.SectionReader
	pmtPID   int
	tracks   []Track
	video    map[uint16]int // MPEG video PID → its track
	progs    []ts.Program
	table    ts.PMT
}

func (p *prober) packet(pkt []byte) {
	switch pid := ts.PID(pkt); {
	case pid == 0:
		p.pat.Push(pkt, p.onPAT)
	case int(pid) == p.pmtPID:
		p.pmt.Push(pkt, p.onPMT)
	default:
		if i, ok := p.video[pid]; ok && p.tracks[i].Width == 0 {
			t := &p.tracks[i]
			var mpeg2 bool
			if t.Width, t.Height, mpeg2 = sequenceHeader(pkt); mpeg2 {
				t.Codec = "mpeg2video"
			}
		}
	}
}

// onPAT takes the PMT's PID from the first program of a PAT.
func (p *prober) onPAT(b []byte) {
	s, _, err := ts.ParseSection(b)
	if err != nil {
		return
	}
	if p.progs, err = ts.ParsePAT(s, p.progs[:0]); err == nil {
		for _, prog := range p.progs {
			if prog.Number != 0 {
				p.pmtPID = int(prog.PID)
				return
			}
		}
	}
}

// onPMT takes the tracks from the first PMT.
func (p *prober) onPMT(b []byte) {
	s, _, err := ts.ParseSection(b)
	if err != nil || p.tracks != nil || ts.ParsePMT(s, &p.table) != nil {
		return
	}
	p.tracks = []Track{}
	for _, st := range p.table.Streams {
		if ts.IsVideo(st.Type) && ts.FamilyOf(st.Type) == ts.FamilyMPEG1 {
			p.video[st.PID] = len(p.tracks)
		}
		p.tracks = append(p.tracks, Track{Kind: ts.KindOf(st.Type), Codec: ts.CodecName(st.Type)})
	}
}

// done reports whether the tracks and every MPEG video's size are known.
func (p *prober) done() bool {
	if p.tracks == nil {
		return false
	}
	for _, i := range p.video {
		if p.tracks[i].Width == 0 {
			return false
		}
	}
	return true
}

// sequenceHeader returns the picture size of an MPEG-1/2 video sequence
// header in the packet's payload (zeros if there is none), and whether a
// sequence extension follows it, which only MPEG-2 has. (A header split
// across two packets is missed; the next keyframe brings another.)
func sequenceHeader(p []byte) (w, h int, mpeg2 bool) {
	off, ok := ts.PayloadOffset(p)
	if !ok || !ts.HasPayload(p) {
		return 0, 0, false
	}
	b := p[off:]
	i := bytes.Index(b, []byte{0, 0, 1, 0xb3})
	if i < 0 || len(b) < i+7 {
		return 0, 0, false
	}
	s := b[i+4:]
	return int(s[0])<<4 | int(s[1])>>4, int(s[1]&0x0f)<<8 | int(s[2]), bytes.Contains(s, []byte{0, 0, 1, 0xb5})
}
