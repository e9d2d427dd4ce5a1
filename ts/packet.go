package ts

// Header accessors read fields of one packet in place. They assume p holds a
// whole packet (len(p) >= PacketSize), as the Aligner guarantees.

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

// HasPayload reports whether the packet carries a payload.
func HasPayload(p []byte) bool { return p[3]&0x10 != 0 }

// CC returns the continuity counter.
func CC(p []byte) uint8 { return p[3] & 0x0f }

// SetCC rewrites the continuity counter in place.
func SetCC(p []byte, cc uint8) { p[3] = p[3]&0xf0 | cc&0x0f }

// PIDPAT is the PID of the Program Association Table.
const PIDPAT = 0x0000
