package ts

// Header accessors read fields of one packet in place. They assume p holds a
// whole packet (len(p) >= PacketSize), as the Aligner guarantees; the
// functions that look past the 4-byte header (PayloadOffset, PCR) check
// what they read against the packet's end and report malformed packets
// rather than trusting length fields.

// PID returns the packet identifier.
func PID(p []byte) uint16 { return uint16(p[1]&0x1f)<<8 | uint16(p[2]) }

// SetPID rewrites the packet identifier in place.
func SetPID(p []byte, pid uint16) {
	p[1] = p[1]&0xe0 | byte(pid>>8)&0x1f
	p[2] = byte(pid)
}

// PayloadUnitStart reports whether a PES packet or PSI section starts in
// this packet.
func PayloadUnitStart(p []byte) bool { return p[1]&0x40 != 0 }

// TransportError reports the transport_error_indicator: the packet is known
// to be damaged.
func TransportError(p []byte) bool { return p[1]&0x80 != 0 }

// Scrambled reports whether the payload is scrambled.
func Scrambled(p []byte) bool { return p[3]&0xc0 != 0 }

// HasPayload reports whether the packet carries a payload.
func HasPayload(p []byte) bool { return p[3]&0x10 != 0 }

// HasAdaptation reports whether the packet has an adaptation field.
func HasAdaptation(p []byte) bool { return p[3]&0x20 != 0 }

// CC returns the continuity counter.
func CC(p []byte) Continuity { return Continuity(p[3] & 0x0f) }

// SetCC rewrites the continuity counter in place.
func SetCC(p []byte, cc Continuity) { p[3] = p[3]&0xf0 | byte(cc)&0x0f }

// PIDPAT is the PID of the Program Association Table.
const PIDPAT = 0x0000

// PIDNull is the PID of null (stuffing) packets.
const PIDNull = 0x1fff

// Adaptation field flags (the byte after adaptation_field_length).
const (
	afDiscontinuity = 0x80
	afRandomAccess  = 0x40
	afPCR           = 0x10
	afOPCR          = 0x08
	afSplice        = 0x04
	afPrivate       = 0x02
	afExtension     = 0x01
)

// PayloadOffset returns where the payload starts in p (PacketSize when the
// packet has none) and whether the header and adaptation field are well
// formed: adaptation_field_control not reserved, the adaptation field
// within the packet (exactly 183 bytes when there is no payload, as the
// standard requires) and its optional fields within its length.
func PayloadOffset(p []byte) (int, bool) {
	if len(p) < PacketSize || p[0] != SyncByte {
		return 0, false
	}
	switch p[3] & 0x30 {
	case 0x10:
		return 4, true
	case 0x20:
		return PacketSize, p[4] == 183 && adaptationOK(p)
	case 0x30:
		n := int(p[4])
		return 5 + n, n <= 182 && adaptationOK(p)
	}
	return 0, false
}

// adaptationOK checks that the optional fields announced by the flags fit in
// the adaptation field's length.
func adaptationOK(p []byte) bool {
	n := int(p[4])
	if n == 0 {
		return true // a single stuffing byte: no flags
	}
	end := 5 + n
	if end > PacketSize {
		return false
	}
	f := p[5]
	q := 6
	if f&afPCR != 0 {
		q += 6
	}
	if f&afOPCR != 0 {
		q += 6
	}
	if f&afSplice != 0 {
		q++
	}
	if f&afPrivate != 0 {
		if q >= end {
			return false
		}
		q += 1 + int(p[q])
	}
	if f&afExtension != 0 {
		if q >= end {
			return false
		}
		q += 1 + int(p[q])
	}
	return q <= end
}

// Discontinuity reports the adaptation field's discontinuity_indicator.
func Discontinuity(p []byte) bool {
	return HasAdaptation(p) && p[4] > 0 && p[5]&afDiscontinuity != 0
}

// SetDiscontinuity sets the discontinuity_indicator of a packet that has
// an adaptation field with flags; it reports whether it could.
func SetDiscontinuity(p []byte) bool {
	if !HasAdaptation(p) || p[4] == 0 || p[4] > 183 {
		return false
	}
	p[5] |= afDiscontinuity
	return true
}

// RandomAccess reports the adaptation field's random_access_indicator.
func RandomAccess(p []byte) bool {
	return HasAdaptation(p) && p[4] > 0 && p[5]&afRandomAccess != 0
}

// hasPCR reports whether p carries a PCR that lies within its adaptation
// field.
func hasPCR(p []byte) bool {
	return HasAdaptation(p) && p[4] >= 7 && p[4] <= 183 && p[5]&afPCR != 0
}

// PCR returns the program clock reference as its 33-bit base (90 kHz) and
// 9-bit extension (27 MHz remainder), and whether the packet carries one.
func PCR(p []byte) (base uint64, ext uint16, ok bool) {
	if !hasPCR(p) {
		return 0, 0, false
	}
	b := p[6:12]
	base = uint64(b[0])<<25 | uint64(b[1])<<17 | uint64(b[2])<<9 | uint64(b[3])<<1 | uint64(b[4])>>7
	ext = uint16(b[4]&1)<<8 | uint16(b[5])
	return base, ext, true
}

// SetPCR rewrites the PCR in place, keeping its reserved bits; it reports
// false (and writes nothing) when the packet carries none.
func SetPCR(p []byte, base uint64, ext uint16) bool {
	if !hasPCR(p) {
		return false
	}
	b := p[6:12]
	base &= TimestampMask
	b[0] = byte(base >> 25)
	b[1] = byte(base >> 17)
	b[2] = byte(base >> 9)
	b[3] = byte(base >> 1)
	b[4] = byte(base<<7) | 0x7e | byte(ext>>8)&1
	b[5] = byte(ext)
	return true
}

// PCR27 combines a PCR base and extension into 27 MHz ticks.
func PCR27(base uint64, ext uint16) uint64 { return base*300 + uint64(ext) }
