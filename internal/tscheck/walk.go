// Package tscheck owns test support for MPEG-TS recordings: a packet walk
// with this module's own ts code, an independent one with go-astits, the
// ffprobe/ffmpeg checks a user would run on a recording, and a synthetic
// ffmpeg-like feed. It is for tests only (the muxer's and the end-to-end
// ones); nothing in the product imports it.
package tscheck

import (
	"fmt"
	"slices"

	"github.com/vwlab/vw/ts"
)

// Stamp is a timestamp seen at a packet of the recording.
type Stamp struct {
	Packet int    // index of the packet in the recording
	Value  uint64 // 90 kHz (PTS) or 27 MHz (PCR)
	// Disc is the packet's discontinuity_indicator: a PCR may jump there.
	Disc bool
}

// ES is what the walk saw of one elementary stream PID.
type ES struct {
	PID       uint16
	Type      uint8  // stream_type in the last PMT that listed it
	Packets   int    // packets on the PID
	PES       int    // PES packets started
	StreamIDs []byte // distinct stream_ids, in order of appearance
	PTS       []Stamp
	// CutPES counts bounded PES packets (audio) that a new PES start
	// interrupted before they were complete: a cut mid-frame.
	CutPES int
}

// Report is the result of Walk.
type Report struct {
	Packets   int
	Malformed int      // bad sync byte, reserved or overlong adaptation field, bad PES header
	CCErrors  []string // continuity errors, one line each
	PATs      int      // PAT sections seen
	PMTs      int      // PMT sections seen
	// PMTVersions lists the PMT version each time it changed.
	PMTVersions []uint8
	// PCRPIDs lists the PMT's PCR PID each time it changed.
	PCRPIDs []uint16
	// PCR holds the PCRs seen on the PCR PID of the PMT in force.
	PCR []Stamp
	// ES holds every PID a PMT listed, by PID.
	ES map[uint16]*ES
	// Unlisted counts packets on PIDs no PMT (so far) listed, PSI aside.
	Unlisted int
	// OffPMT counts packets on a PID that an earlier PMT listed but the PMT
	// in force does not: media of a removed feed (a mute) that leaked out.
	OffPMT int
	// BadPSI counts PAT/PMT sections that did not parse (CRC and all).
	BadPSI int
	// InForce lists the PIDs of the last PMT seen, in its order.
	InForce []uint16
}

// Walk parses a recording packet by packet with the ts package: continuity
// counters on every PID, PAT and PMT (CRC checked), PES headers and PTS of
// every listed stream, PCR on the PCR PID. It is one loop over packets on
// purpose: each check reads the state the others keep (the PMT in force, a
// PID's last counter), as a demuxer does.
func Walk(b []byte) *Report {
	r := &Report{ES: map[uint16]*ES{}}
	lastCC := map[uint16]ts.Continuity{}
	pesLeft := map[uint16]int{}
	readers := map[uint16]*ts.SectionReader{}
	pmtPIDs := map[uint16]bool{}
	var pcrPID uint16 = ts.PIDNull
	var pmt ts.PMT
	inForce := map[uint16]bool{}
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		p := b[i : i+ts.PacketSize]
		n := r.Packets
		r.Packets++
		off, ok := ts.PayloadOffset(p)
		if !ok {
			r.Malformed++
			continue
		}
		pid := ts.PID(p)
		hasPayload := ts.HasPayload(p) && off < ts.PacketSize
		if pid != ts.PIDNull {
			cc := ts.CC(p)
			if last, seen := lastCC[pid]; seen && !ts.Discontinuity(p) {
				want := last
				if hasPayload {
					want = last.Next()
				}
				if cc != want {
					r.CCErrors = append(r.CCErrors, fmt.Sprintf("packet %d PID %#x: continuity counter %d, want %d", n, pid, cc, want))
				}
			}
			lastCC[pid] = cc
		}
		if pid == ts.PIDPAT || pmtPIDs[pid] {
			sr := readers[pid]
			if sr == nil {
				sr = new(ts.SectionReader)
				readers[pid] = sr
			}
			sr.Push(p, func(sec []byte) {
				s, _, err := ts.ParseSection(sec)
				if err != nil {
					r.BadPSI++
					return
				}
				switch {
				case pid == ts.PIDPAT && s.TableID == ts.TablePAT:
					r.PATs++
					progs, err := ts.ParsePAT(s, nil)
					if err != nil {
						r.BadPSI++
					}
					for _, pr := range progs {
						if pr.Number != 0 {
							pmtPIDs[pr.PID] = true
						}
					}
				case s.TableID == ts.TablePMT:
					if err := ts.ParsePMT(s, &pmt); err != nil {
						r.BadPSI++
						return
					}
					r.PMTs++
					if len(r.PMTVersions) == 0 || r.PMTVersions[len(r.PMTVersions)-1] != pmt.Version {
						r.PMTVersions = append(r.PMTVersions, pmt.Version)
					}
					if len(r.PCRPIDs) == 0 || r.PCRPIDs[len(r.PCRPIDs)-1] != pmt.PCRPID {
						r.PCRPIDs = append(r.PCRPIDs, pmt.PCRPID)
					}
					pcrPID = pmt.PCRPID
					clear(inForce)
					r.InForce = r.InForce[:0]
					for _, st := range pmt.Streams {
						inForce[st.PID] = true
						r.InForce = append(r.InForce, st.PID)
						e := r.ES[st.PID]
						if e == nil {
							e = &ES{PID: st.PID}
							r.ES[st.PID] = e
						}
						e.Type = st.Type
					}
				}
			})
			continue
		}
		if pid == pcrPID {
			if base, ext, ok := ts.PCR(p); ok {
				r.PCR = append(r.PCR, Stamp{n, ts.PCR27(base, ext), ts.Discontinuity(p)})
			}
		}
		e := r.ES[pid]
		if e == nil {
			if pid != ts.PIDNull {
				r.Unlisted++
			}
			continue
		}
		e.Packets++
		if !inForce[pid] {
			r.OffPMT++
		}
		if !hasPayload {
			continue
		}
		if !ts.PayloadUnitStart(p) {
			if left, ok := pesLeft[pid]; ok && left > 0 {
				pesLeft[pid] = left - (ts.PacketSize - off)
			}
			continue
		}
		if left := pesLeft[pid]; left > 0 {
			e.CutPES++
		}
		h, err := ts.ParsePES(p[off:])
		if err != nil {
			r.Malformed++
			delete(pesLeft, pid)
			continue
		}
		e.PES++
		if !slices.Contains(e.StreamIDs, h.StreamID) {
			e.StreamIDs = append(e.StreamIDs, h.StreamID)
		}
		if h.PTS > 0 {
			e.PTS = append(e.PTS, Stamp{n, ts.Timestamp(p[off+h.PTS:]), ts.Discontinuity(p)})
		}
		if h.Length > 0 {
			pesLeft[pid] = h.Length + 6 - (ts.PacketSize - off)
		} else {
			delete(pesLeft, pid)
		}
	}
	return r
}

// Kind returns the ES of the PMTs whose stream type is video (or audio).
func (r *Report) Kind(video bool) []*ES {
	var out []*ES
	for _, e := range r.ES {
		if (video && ts.IsVideoType(e.Type)) || (!video && ts.IsAudioType(e.Type)) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *ES) int { return int(a.PID) - int(b.PID) })
	return out
}

// PCRMonotonic reports the first PCR on the PCR PID that goes backwards
// without a discontinuity_indicator, as an error.
func (r *Report) PCRMonotonic() error {
	for i := 1; i < len(r.PCR); i++ {
		if r.PCR[i].Value < r.PCR[i-1].Value && !r.PCR[i].Disc {
			return fmt.Errorf("PCR goes back at packet %d: %d after %d", r.PCR[i].Packet, r.PCR[i].Value, r.PCR[i-1].Value)
		}
	}
	return nil
}
