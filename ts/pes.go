package ts

import "errors"

// Errors returned by the parsers. They say what is wrong, never panic, and
// the parsers never read past the slice they are given.
var (
	ErrShort  = errors.New("ts: data cut short")
	ErrSyntax = errors.New("ts: malformed header")
	ErrCRC    = errors.New("ts: section CRC mismatch")
)

// PESHeader locates the fields of a PES header within a payload that starts
// with it. Offsets are relative to that payload.
type PESHeader struct {
	// StreamID is the stream_id byte (0xE0-0xEF video, 0xC0-0xDF audio).
	StreamID byte
	// Length is PES_packet_length: the bytes after this field, or 0 when
	// unbounded (video).
	Length int
	// DataOffset is where the elementary stream data starts.
	DataOffset int
	// PTS and DTS are the offsets of the 5-byte timestamp fields, or 0 when
	// absent.
	PTS, DTS int
}

// hasOptionalHeader reports whether a stream_id's PES packets carry the
// optional header with flags and timestamps (ISO/IEC 13818-1 2.4.3.7).
func hasOptionalHeader(id byte) bool {
	switch id {
	case 0xbc, 0xbe, 0xbf, 0xf0, 0xf1, 0xff, 0xf2, 0xf8:
		return false
	}
	return true
}

// ParsePES parses the PES header at the start of b. It fails with ErrShort
// when b ends before the timestamps (a header split across packets, which
// this package does not reassemble) and ErrSyntax when the start code or
// marker bits are wrong.
func ParsePES(b []byte) (PESHeader, error) {
	var h PESHeader
	if len(b) < 6 {
		return h, ErrShort
	}
	if b[0] != 0 || b[1] != 0 || b[2] != 1 || b[3] < 0xbc {
		return h, ErrSyntax
	}
	h.StreamID = b[3]
	h.Length = int(b[4])<<8 | int(b[5])
	if !hasOptionalHeader(h.StreamID) {
		h.DataOffset = 6
		return h, nil
	}
	if len(b) < 9 {
		return h, ErrShort
	}
	if b[6]&0xc0 != 0x80 {
		return h, ErrSyntax
	}
	hdl := int(b[8])
	h.DataOffset = 9 + hdl
	if h.Length != 0 && h.Length < 3+hdl {
		return h, ErrSyntax
	}
	need := 0
	switch b[7] >> 6 {
	case 0:
	case 2:
		h.PTS, need = 9, 5
	case 3:
		h.PTS, h.DTS, need = 9, 14, 10
	default:
		return h, ErrSyntax // '01' is forbidden
	}
	if need > hdl {
		return h, ErrSyntax
	}
	if 9+need > len(b) {
		return PESHeader{}, ErrShort
	}
	return h, nil
}

// Timestamp reads a 5-byte PTS or DTS field.
func Timestamp(b []byte) uint64 {
	return uint64(b[0]>>1&7)<<30 | uint64(b[1])<<22 | uint64(b[2]>>1)<<15 | uint64(b[3])<<7 | uint64(b[4]>>1)
}

// PutTimestamp writes a 5-byte PTS or DTS field in place, keeping the 4-bit
// prefix ('0010', '0011' or '0001') already there and setting the marker
// bits.
func PutTimestamp(b []byte, v uint64) {
	v &= TimestampMask
	b[0] = b[0]&0xf0 | byte(v>>29)&0x0e | 1
	b[1] = byte(v >> 22)
	b[2] = byte(v>>14) | 1
	b[3] = byte(v >> 7)
	b[4] = byte(v<<1) | 1
}

// IsVideoStreamID and IsAudioStreamID classify PES stream_ids as MPEG
// video (0xE0-0xEF) and MPEG audio (0xC0-0xDF).
func IsVideoStreamID(id byte) bool { return id&0xf0 == 0xe0 }

// IsAudioStreamID: see IsVideoStreamID.
func IsAudioStreamID(id byte) bool { return id&0xe0 == 0xc0 }
