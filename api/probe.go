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
	Codec string `json:"codec"` // as players name it: mpeg1video, mp2, h264, aac, ...
	// Width and Height are known for MPEG-1/2 video (from its sequence
	// header); zero otherwise.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
}

// codecs names PMT stream types.
var codecs = map[uint8]Track{
	0x01: {Kind: "video", Codec: "mpeg1video"},
	0x02: {Kind: "video", Codec: "mpeg2video"}, // or MPEG-1: see sequenceHeader
	0x1b: {Kind: "video", Codec: "h264"},
	0x24: {Kind: "video", Codec: "hevc"},
	0x03: {Kind: "audio", Codec: "mp2"},
	0x04: {Kind: "audio", Codec: "mp2"},
	0x0f: {Kind: "audio", Codec: "aac"},
	0x11: {Kind: "audio", Codec: "aac_latm"},
	0x81: {Kind: "audio", Codec: "ac3"},
}

// probe reads a feed's packets from sub until it knows its tracks (from its
// PAT and PMT) and the size of its MPEG video (from a sequence header, sent
// at every keyframe), or until ctx ends or stop closes. It looks at a copy
// of the feed for a few seconds, once per POST, when someone asks for the
// status: nothing is added to the path of the packets. It returns the
// tracks found (nil if no PMT came) and whether it found everything.
func probe(ctx context.Context, stop <-chan struct{}, sub *hub.Sub) ([]Track, bool) {
	var (
		pat, pmt ts.SectionReader
		pmtPID   = -1
		tracks   []Track
		video    = map[uint16]int{} // MPEG video PID → its track
		progs    []ts.Program
		table    ts.PMT
	)
	onPAT := func(b []byte) {
		s, _, err := ts.ParseSection(b)
		if err != nil {
			return
		}
		if progs, err = ts.ParsePAT(s, progs[:0]); err == nil {
			for _, p := range progs {
				if p.Number != 0 {
					pmtPID = int(p.PID)
					return
				}
			}
		}
	}
	onPMT := func(b []byte) {
		s, _, err := ts.ParseSection(b)
		if err != nil || tracks != nil || ts.ParsePMT(s, &table) != nil {
			return
		}
		tracks = []Track{}
		for _, st := range table.Streams {
			t, ok := codecs[st.Type]
			if !ok {
				t = Track{Kind: "data", Codec: "unknown"}
			}
			if st.Type == 0x01 || st.Type == 0x02 {
				video[st.PID] = len(tracks)
			}
			tracks = append(tracks, t)
		}
	}
	done := func() bool {
		if tracks == nil {
			return false
		}
		for _, i := range video {
			if tracks[i].Width == 0 {
				return false
			}
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return tracks, false
		case <-stop:
			return tracks, false
		case <-sub.Done():
			return tracks, false
		case m := <-sub.C():
			for b := m.Data; len(b) >= ts.PacketSize; b = b[ts.PacketSize:] {
				p := b[:ts.PacketSize]
				switch pid := ts.PID(p); {
				case pid == 0:
					pat.Push(p, onPAT)
				case int(pid) == pmtPID:
					pmt.Push(p, onPMT)
				default:
					if i, ok := video[pid]; ok && tracks[i].Width == 0 {
						t := &tracks[i]
						var mpeg2 bool
						if t.Width, t.Height, mpeg2 = sequenceHeader(p); t.Width > 0 && !mpeg2 {
							t.Codec = "mpeg1video" // ffmpeg labels MPEG-1 as stream type 2 too
						}
					}
				}
			}
			if done() {
				return tracks, true
			}
		}
	}
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
