package ts

// Aligner cuts a byte stream, arriving in chunks split anywhere, into whole
// 188-byte packets that start with the sync byte. It never emits a partial
// packet: after garbage it drops bytes until it finds a sync byte confirmed by
// two more at packet steps (random bytes fake that once in 16 MB; one
// confirmation would be fooled every 64 KB), and it drops a packet that is
// followed by something other than a sync byte, because that packet may
// itself have been cut short.
//
// The zero value is ready to use. Append allocates nothing when dst has room.
type Aligner struct {
	carry   [(confirmations + 1) * PacketSize]byte
	n       int
	locked  bool
	skipped uint64
	resyncs uint64
	lost    bool // bytes were skipped since sync was last found
}

// confirmations is how many sync bytes at packet steps after a candidate
// confirm it when regaining sync.
const confirmations = 2

// Skipped returns how many input bytes were discarded while resyncing.
func (a *Aligner) Skipped() uint64 { return a.skipped }

// Resyncs returns how many times the Aligner found sync again after
// discarding bytes: one for each run of garbage or cut packet it recovered
// from, however the input was split into chunks.
func (a *Aligner) Resyncs() uint64 { return a.resyncs }

// Reset forgets any carried bytes and the sync lock, for a new stream.
func (a *Aligner) Reset() { *a = Aligner{} }

// Append appends to dst every whole packet that src completes and returns
// the extended slice. Bytes of a packet not yet complete are kept for the
// next call.
func (a *Aligner) Append(dst, src []byte) []byte {
	// Bytes carried from the last call come first: top the carry up from src
	// and scan it until it is empty, then scan src in place.
	for a.n > 0 && len(src) > 0 {
		k := copy(a.carry[a.n:], src)
		a.n += k
		src = src[k:]
		peek := -1
		if len(src) > 0 {
			peek = int(src[0])
		}
		var used int
		dst, used = a.scan(dst, a.carry[:a.n], peek)
		a.n = copy(a.carry[:], a.carry[used:a.n])
	}
	if len(src) == 0 {
		return dst
	}
	dst, used := a.scan(dst, src, -1)
	a.n = copy(a.carry[:], src[used:])
	return dst
}

// scan emits the whole packets of b and returns how many bytes of b it has
// finished with; the rest (never more than confirmations packets) must be
// carried. peek
// is the byte that follows b, or -1 if it has not arrived yet.
func (a *Aligner) scan(dst, b []byte, peek int) ([]byte, int) {
	p := 0
	for {
		if !a.locked {
			q, ok := findSync(b, p, peek)
			a.skip(q - p)
			if !ok {
				return dst, q
			}
			p = q
			a.locked = true
			if a.lost {
				a.resyncs++
				a.lost = false
			}
		}
		if len(b)-p < PacketSize {
			return dst, p
		}
		if b[p] != SyncByte {
			a.locked = false
			continue
		}
		next := peek
		if p+PacketSize < len(b) {
			next = int(b[p+PacketSize])
		}
		if next >= 0 && next != SyncByte {
			// The packet is followed by garbage, so it may be a truncated one
			// with garbage in its tail: drop it and resync past its sync byte.
			a.locked = false
			a.skip(1)
			p++
			continue
		}
		dst = append(dst, b[p:p+PacketSize]...)
		p += PacketSize
	}
}

func (a *Aligner) skip(n int) {
	if n > 0 {
		a.skipped += uint64(n)
		a.lost = true
	}
}

// findSync looks from p for a sync byte confirmed by more at packet steps.
// It returns the position and true when confirmed; otherwise the position
// from which bytes must be kept until more arrive (len(b) when none need
// keeping) and false.
func findSync(b []byte, p, peek int) (int, bool) {
next:
	for q := p; q < len(b); q++ {
		if b[q] != SyncByte {
			continue
		}
		for k := 1; k <= confirmations; k++ {
			var c int
			switch at := q + k*PacketSize; {
			case at < len(b):
				c = int(b[at])
			case at == len(b) && peek >= 0:
				c = peek
			default:
				return q, false // cannot confirm until more bytes arrive
			}
			if c != SyncByte {
				continue next
			}
		}
		return q, true
	}
	return len(b), false
}

// Buffered returns how many bytes of input the Aligner holds for its next
// packet: the packets Append has emitted so far end that many bytes before
// the end of its input, unless bytes were skipped.
func (a *Aligner) Buffered() int { return a.n }
