package ts

// Table IDs of the PSI sections this package parses and builds.
const (
	TablePAT = 0x00
	TablePMT = 0x02
)

// MaxSectionSize bounds a PSI section: section_length is 12 bits, and for
// PAT and PMT at most 1021, so 1024 bytes with the 3-byte header. Private
// sections may reach 4096.
const MaxSectionSize = 4096

// Section is a long-form PSI section, parsed in place: Data aliases the
// input.
type Section struct {
	TableID byte
	// ID is table_id_extension: transport_stream_id for a PAT,
	// program_number for a PMT.
	ID          uint16
	Version     uint8
	CurrentNext bool
	Number      uint8
	LastNumber  uint8
	// Data is the table body between the 8-byte header and the CRC.
	Data []byte
}

// ParseSection parses the long-form section at the start of b and checks
// its CRC. It returns the section and its total size in bytes.
func ParseSection(b []byte) (Section, int, error) {
	var s Section
	if len(b) < 3 {
		return s, 0, ErrShort
	}
	s.TableID = b[0]
	if b[1]&0x80 == 0 { // section_syntax_indicator: PAT and PMT use the long form
		return s, 0, ErrSyntax
	}
	n := 3 + (int(b[1]&0x0f)<<8 | int(b[2]))
	if n < 12 || n > MaxSectionSize {
		return s, 0, ErrSyntax
	}
	if len(b) < n {
		return s, 0, ErrShort
	}
	if CRC32(b[:n]) != 0 {
		return s, 0, ErrCRC
	}
	s.ID = uint16(b[3])<<8 | uint16(b[4])
	s.Version = b[5] >> 1 & 0x1f
	s.CurrentNext = b[5]&1 != 0
	s.Number = b[6]
	s.LastNumber = b[7]
	s.Data = b[8 : n-4]
	return s, n, nil
}

// PacketSection parses the section that starts in packet p and ends in
// it, as ffmpeg's PAT and PMT do, checking its CRC. It fails with
// ErrSyntax when no section starts in p (or p is malformed or damaged)
// and ErrShort when the section goes on past p: a SectionReader
// reassembles those.
func PacketSection(p []byte) (Section, error) {
	off, ok := PayloadOffset(p)
	if !ok || off >= PacketSize || !PayloadUnitStart(p) || TransportError(p) {
		return Section{}, ErrSyntax
	}
	b := p[off:PacketSize]
	start := 1 + int(b[0]) // after the pointer_field
	if start >= len(b) {
		return Section{}, ErrShort
	}
	s, _, err := ParseSection(b[start:])
	return s, err
}

// Program is one entry of a PAT: program 0 points at the network PID, any
// other at its PMT.
type Program struct {
	Number uint16
	PID    uint16
}

// ParsePAT appends the programs of a PAT section to dst.
func ParsePAT(s Section, dst []Program) ([]Program, error) {
	if s.TableID != TablePAT || len(s.Data)%4 != 0 {
		return dst, ErrSyntax
	}
	for b := s.Data; len(b) >= 4; b = b[4:] {
		dst = append(dst, Program{Number: uint16(b[0])<<8 | uint16(b[1]), PID: uint16(b[2]&0x1f)<<8 | uint16(b[3])})
	}
	return dst, nil
}

// Stream is one elementary stream of a PMT. Info (its descriptors) aliases
// the parsed section.
type Stream struct {
	Type uint8
	PID  uint16
	Info []byte
}

// PMT is a program map table. ParsePMT fills it in place, reusing the
// capacity of Streams.
type PMT struct {
	Program uint16
	Version uint8
	PCRPID  uint16
	Info    []byte
	Streams []Stream
}

// ParsePMT parses a PMT section into dst.
func ParsePMT(s Section, dst *PMT) error {
	dst.Streams = dst.Streams[:0]
	if s.TableID != TablePMT {
		return ErrSyntax
	}
	b := s.Data
	if len(b) < 4 {
		return ErrShort
	}
	dst.Program = s.ID
	dst.Version = s.Version
	dst.PCRPID = uint16(b[0]&0x1f)<<8 | uint16(b[1])
	n := int(b[2]&0x0f)<<8 | int(b[3])
	if 4+n > len(b) {
		return ErrShort
	}
	dst.Info = b[4 : 4+n]
	for b = b[4+n:]; len(b) > 0; {
		if len(b) < 5 {
			return ErrShort
		}
		n := int(b[3]&0x0f)<<8 | int(b[4])
		if 5+n > len(b) {
			return ErrShort
		}
		dst.Streams = append(dst.Streams, Stream{Type: b[0], PID: uint16(b[1]&0x1f)<<8 | uint16(b[2]), Info: b[5 : 5+n]})
		b = b[5+n:]
	}
	return nil
}

// appendSection appends a long-form section with the given body (produced
// by body into the slice it is given) and its CRC.
func appendSectionHeader(dst []byte, table byte, id uint16, version uint8) []byte {
	return append(dst, table, 0xb0, 0, byte(id>>8), byte(id), 0xc1|version<<1&0x3e, 0, 0)
}

// finishSection fills in section_length and appends the CRC of the section
// that starts at dst[start:].
func finishSection(dst []byte, start int) []byte {
	n := len(dst) - start + 4 - 3
	dst[start+1] = 0xb0 | byte(n>>8)&0x0f
	dst[start+2] = byte(n)
	c := CRC32(dst[start:])
	return append(dst, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
}

// AppendPAT appends a PAT section listing progs.
func AppendPAT(dst []byte, tsid uint16, version uint8, progs []Program) []byte {
	start := len(dst)
	dst = appendSectionHeader(dst, TablePAT, tsid, version)
	for _, p := range progs {
		dst = append(dst, byte(p.Number>>8), byte(p.Number), 0xe0|byte(p.PID>>8)&0x1f, byte(p.PID))
	}
	return finishSection(dst, start)
}

// AppendPMT appends the PMT section of m. Descriptor loops longer than
// their 10-bit length fields allow are truncated to an empty loop rather
// than written malformed.
func AppendPMT(dst []byte, m *PMT) []byte {
	start := len(dst)
	dst = appendSectionHeader(dst, TablePMT, m.Program, m.Version)
	info := m.Info
	if len(info) > 0x3ff {
		info = nil
	}
	dst = append(dst, 0xe0|byte(m.PCRPID>>8)&0x1f, byte(m.PCRPID), 0xf0|byte(len(info)>>8), byte(len(info)))
	dst = append(dst, info...)
	for _, s := range m.Streams {
		info := s.Info
		if len(info) > 0x3ff {
			info = nil
		}
		dst = append(dst, s.Type, 0xe0|byte(s.PID>>8)&0x1f, byte(s.PID), 0xf0|byte(len(info)>>8), byte(len(info)))
		dst = append(dst, info...)
	}
	return finishSection(dst, start)
}

// AppendSectionPackets appends the packets that carry section on pid,
// numbering them from cc, and returns the next counter. The first packet
// has payload_unit_start and a zero pointer_field; the last is padded with
// 0xFF.
func AppendSectionPackets(dst []byte, pid uint16, cc Continuity, section []byte) ([]byte, Continuity) {
	first := true
	for first || len(section) > 0 {
		var hdr [5]byte
		hdr[0] = SyncByte
		hdr[1] = byte(pid>>8) & 0x1f
		hdr[2] = byte(pid)
		hdr[3] = 0x10 | byte(cc)&0x0f
		n := 4
		if first {
			hdr[1] |= 0x40
			n = 5 // pointer_field 0
		}
		dst = append(dst, hdr[:n]...)
		k := min(len(section), PacketSize-n)
		dst = append(dst, section[:k]...)
		for range PacketSize - n - k {
			dst = append(dst, 0xff)
		}
		section = section[k:]
		cc = cc.Next()
		first = false
	}
	return dst, cc
}

// SectionReader reassembles PSI sections from the packets of one PID. The
// zero value is ready; it holds its buffer inline so that it never
// allocates.
type SectionReader struct {
	buf    [MaxSectionSize]byte
	n      int // bytes gathered
	active bool
	lastCC Continuity
	ccSeen bool // lastCC holds a packet's counter
}

// Push feeds one packet of the reader's PID and calls emit with each
// section it completes. The section passed to emit is only valid during the
// call. A lost packet (continuity gap) abandons the section in progress.
func (r *SectionReader) Push(p []byte, emit func(section []byte)) {
	off, ok := PayloadOffset(p)
	if !ok || !HasPayload(p) || off >= PacketSize || TransportError(p) {
		return
	}
	cc := CC(p)
	if r.ccSeen && cc == r.lastCC {
		return // a duplicate packet
	}
	gap := r.ccSeen && cc != r.lastCC.Next()
	r.lastCC, r.ccSeen = cc, true
	if gap {
		r.active = false
	}
	b := p[off:PacketSize]
	if PayloadUnitStart(p) {
		ptr := int(b[0])
		b = b[1:]
		if ptr > len(b) {
			r.active = false
			return
		}
		if r.active {
			r.take(b[:ptr], emit)
		}
		b = b[ptr:]
		r.active = true
		r.n = 0
	} else if !r.active {
		return
	}
	r.take(b, emit)
}

// take appends b to the section in progress, emitting every section that
// completes; bytes after a completed section start another, unless they
// are 0xFF stuffing.
func (r *SectionReader) take(b []byte, emit func([]byte)) {
	for r.active && len(b) > 0 {
		if r.n == 0 && b[0] == 0xff {
			r.active = false // stuffing to the end of the packet
			return
		}
		want := MaxSectionSize
		if r.n >= 3 {
			want = 3 + (int(r.buf[1]&0x0f)<<8 | int(r.buf[2]))
		} else if r.n+len(b) >= 3 {
			var h [3]byte
			copy(h[:], r.buf[:r.n])
			copy(h[r.n:], b)
			want = 3 + (int(h[1]&0x0f)<<8 | int(h[2]))
		}
		if want > MaxSectionSize {
			r.active = false
			return
		}
		k := min(len(b), want-r.n)
		r.n += copy(r.buf[r.n:], b[:k])
		b = b[k:]
		if r.n == want {
			emit(r.buf[:r.n])
			r.n = 0
		}
	}
}

// IsVideoType and IsAudioType classify PMT stream_type values.
func IsVideoType(t uint8) bool {
	switch t {
	case 0x01, 0x02, 0x10, 0x1b, 0x24, 0x42, 0xea:
		return true
	}
	return false
}

// IsAudioType: see IsVideoType.
func IsAudioType(t uint8) bool {
	switch t {
	case 0x03, 0x04, 0x0f, 0x11, 0x1c, 0x81, 0x87:
		return true
	}
	return false
}
