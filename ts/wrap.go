package ts

// The header fields that count do so modulo a power of two: timestamps in
// 33 bits, continuity counters in 4, table versions in 5. Their arithmetic
// is written here once, so that callers never mask by hand.

// TimestampMask keeps the 33 bits of a PTS, DTS or PCR base: these clocks
// count 90 kHz ticks modulo 2^33.
const TimestampMask = 1<<33 - 1

// TimestampDiff returns a - b on the 33-bit clock as the shortest signed
// distance, in [-2^32, 2^32): a timestamp just after the wrap is a little
// later than one just before it, not 26 hours earlier. Bits of a and b
// above the 33rd are ignored.
func TimestampDiff(a, b uint64) int64 {
	d := int64((a - b) & TimestampMask)
	if d >= 1<<32 {
		d -= 1 << 33
	}
	return d
}

// Continuity is a packet's 4-bit continuity_counter. The zero value is 0.
type Continuity uint8

// Next returns the counter of the PID's next packet with a payload: after
// 15 comes 0.
func (c Continuity) Next() Continuity { return (c + 1) & 0x0f }

// Version is a PSI table's 5-bit version_number. The zero value is 0.
type Version uint8

// Next returns the version of the table's next change: after 31 comes 0.
func (v Version) Next() Version { return (v + 1) & 0x1f }
