package tscheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/asticode/go-astits"
)

// ProbeStream is one stream as ffprobe lists it.
type ProbeStream struct {
	Index     int    `json:"index"`
	CodecName string `json:"codec_name"`
	CodecType string `json:"codec_type"`
	ID        string `json:"id"` // the PID, "0x100"
}

// ProbeProgram is one program as ffprobe lists it.
type ProbeProgram struct {
	ProgramID int           `json:"program_id"`
	Streams   []ProbeStream `json:"streams"`
}

// ProbeInfo is ffprobe's view of a recording.
type ProbeInfo struct {
	Programs []ProbeProgram `json:"programs"`
	Streams  []ProbeStream  `json:"streams"`
}

// Codecs returns the codec names of the streams, in order.
func (p *ProbeInfo) Codecs() []string {
	var out []string
	for _, s := range p.Streams {
		out = append(out, s.CodecName)
	}
	return out
}

func run(ctx context.Context, name string, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// Probe runs `ffprobe -show_programs -show_streams -of json` on path.
func Probe(path string) (*ProbeInfo, error) {
	out, errOut, err := run(context.Background(), "ffprobe", "-v", "error", "-show_programs", "-show_streams", "-of", "json", path)
	if err != nil {
		return nil, fmt.Errorf("ffprobe: %w: %s", err, errOut)
	}
	var p ProbeInfo
	if err := json.Unmarshal(out, &p); err != nil {
		return nil, fmt.Errorf("ffprobe output: %w", err)
	}
	return &p, nil
}

// ProbePacket is one packet as `ffprobe -show_packets` lists it.
type ProbePacket struct {
	CodecType string  // "video" or "audio"
	PTS       float64 // seconds
	Pos       int64   // byte offset in the file
}

// ProbePackets runs `ffprobe -show_packets` on path.
func ProbePackets(path string) ([]ProbePacket, error) {
	out, errOut, err := run(context.Background(), "ffprobe", "-v", "error", "-show_entries", "packet=codec_type,pts_time,pos", "-of", "json", path)
	if err != nil {
		return nil, fmt.Errorf("ffprobe: %w: %s", err, errOut)
	}
	var doc struct {
		Packets []struct {
			CodecType string `json:"codec_type"`
			PTSTime   string `json:"pts_time"`
			Pos       string `json:"pos"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("ffprobe output: %w", err)
	}
	var ps []ProbePacket
	for _, p := range doc.Packets {
		pts, err1 := strconv.ParseFloat(p.PTSTime, 64)
		pos, err2 := strconv.ParseInt(p.Pos, 10, 64)
		if err1 != nil || err2 != nil {
			continue // no PTS: nothing to compare
		}
		ps = append(ps, ProbePacket{CodecType: p.CodecType, PTS: pts, Pos: pos})
	}
	return ps, nil
}

// AVSkew measures, with ffprobe, how far apart audio and video that
// arrived together are in a recording: each audio packet's PTS against that
// of the video packet that starts just before it in the file (by position:
// the demuxer lists a video frame only once the next one starts). It returns
// the first audio packet's offset, the worst offset, and how many audio
// packets were compared.
func AVSkew(path string) (first, worst time.Duration, n int, err error) {
	pkts, err := ProbePackets(path)
	if err != nil {
		return 0, 0, 0, err
	}
	for i := range pkts {
		p := &pkts[i]
		if p.CodecType != "audio" {
			continue
		}
		var best *ProbePacket
		for j := range pkts {
			if q := &pkts[j]; q.CodecType == "video" && q.Pos < p.Pos && (best == nil || q.Pos > best.Pos) {
				best = q
			}
		}
		if best == nil {
			return 0, 0, 0, fmt.Errorf("audio at byte %d before any video", p.Pos)
		}
		d := time.Duration((p.PTS - best.PTS) * float64(time.Second))
		if n == 0 {
			first = d
		}
		if d.Abs() > worst.Abs() {
			worst = d
		}
		n++
	}
	return first, worst, n, nil
}

// Decode runs `ffmpeg -v error -xerror -i path -map 0 -f null -` and returns
// what it printed; err is set when it exits non-zero.
func Decode(path string) (string, error) {
	_, errOut, err := run(context.Background(), "ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", path, "-map", "0", "-f", "null", "-")
	return string(errOut), err
}

// DebugProblems decodes path at `-v debug` and returns the lines that
// report continuity errors or corrupt packets, which only show there.
func DebugProblems(path string) ([]string, error) {
	_, errOut, err := run(context.Background(), "ffmpeg", "-nostdin", "-v", "debug", "-i", path, "-map", "0", "-f", "null", "-")
	if err != nil {
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	var bad []string
	for _, l := range strings.Split(string(errOut), "\n") {
		if strings.Contains(l, "Continuity check failed") || strings.Contains(l, "Packet corrupt") {
			bad = append(bad, l)
		}
	}
	return bad, nil
}

// AstitsReport is go-astits's independent view of a recording.
type AstitsReport struct {
	Packets     int
	CCErrors    []string
	PMTVersions []uint8 // each time it changed
	// ES maps each PID listed by a PMT to its stream type.
	ES map[uint16]astits.StreamType
}

// WalkAstits parses b with go-astits: packets (continuity counters) first,
// then the PSI. It skips PES parsing, where astits panics on a missing PES
// header.
func WalkAstits(b []byte) (*AstitsReport, error) {
	r := &AstitsReport{ES: map[uint16]astits.StreamType{}}
	ctx := context.Background()
	dmx := astits.NewDemuxer(ctx, bytes.NewReader(b), astits.DemuxerOptPacketSize(188))
	last := map[uint16]uint8{}
	for {
		p, err := dmx.NextPacket()
		if errors.Is(err, astits.ErrNoMorePackets) || errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return r, fmt.Errorf("astits: packet %d: %w", r.Packets, err)
		}
		r.Packets++
		h := p.Header
		if h.PID == astits.PIDNull {
			continue
		}
		disc := p.AdaptationField != nil && p.AdaptationField.DiscontinuityIndicator
		if l, ok := last[h.PID]; ok && !disc {
			want := l
			if h.HasPayload {
				want = (l + 1) & 0x0f
			}
			if h.ContinuityCounter != want {
				r.CCErrors = append(r.CCErrors, fmt.Sprintf("packet %d PID %#x: continuity counter %d, want %d", r.Packets-1, h.PID, h.ContinuityCounter, want))
			}
		}
		last[h.PID] = h.ContinuityCounter
	}

	psi := map[uint16]bool{astits.PIDPAT: true}
	onlyPSI := func(ps []*astits.Packet) ([]*astits.DemuxerData, bool, error) {
		return nil, len(ps) == 0 || !psi[ps[0].Header.PID], nil
	}
	dmx = astits.NewDemuxer(ctx, bytes.NewReader(b), astits.DemuxerOptPacketSize(188), astits.DemuxerOptPacketsParser(onlyPSI))
	for {
		d, err := dmx.NextData()
		if errors.Is(err, astits.ErrNoMorePackets) || errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return r, fmt.Errorf("astits: %w", err)
		}
		if d.PAT != nil {
			for _, p := range d.PAT.Programs {
				if p.ProgramNumber != 0 {
					psi[p.ProgramMapID] = true
				}
			}
		}
		if d.PMT != nil {
			if n := len(r.PMTVersions); n == 0 || r.PMTVersions[n-1] != pmtVersion(d) {
				r.PMTVersions = append(r.PMTVersions, pmtVersion(d))
			}
			for _, es := range d.PMT.ElementaryStreams {
				r.ES[es.ElementaryPID] = es.StreamType
			}
		}
	}
	return r, nil
}

// pmtVersion digs the version out of the section astits parsed it from.
func pmtVersion(d *astits.DemuxerData) uint8 {
	if d.FirstPacket == nil {
		return 0
	}
	pl := d.FirstPacket.Payload
	if len(pl) < 1 || int(pl[0])+7 > len(pl) {
		return 0
	}
	return pl[1+int(pl[0])+5] >> 1 & 0x1f
}

// ReadFile is os.ReadFile, here so that callers need one import.
func ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }
