package ts

// ContinuityCheck finds continuity errors in a feed: a packet whose
// continuity_counter does not follow its PID's last one means packets were
// lost (or the feed was cut and spliced) before it. It keeps one byte per
// PID, so a check is one index: 8 KiB per feed, no allocation, O(1) per
// packet. The zero value is ready to use.
//
// As the standard allows, a packet without payload repeats its PID's
// counter, one repeat of a packet with payload is a duplicate rather than
// an error, a discontinuity_indicator starts the count afresh, and null
// packets are not counted.
type ContinuityCheck struct {
	last [PIDNull + 1]uint8 // 0: PID not seen; else ccSeen | dup? | counter
}

const (
	ccSeen = 0x10
	ccDup  = 0x20 // the last packet repeated the one before it
)

// Check reads the whole packets of pkts and returns how many broke
// their PID's continuity.
func (c *ContinuityCheck) Check(pkts []byte) int {
	n := 0
	for i := 0; i+PacketSize <= len(pkts); i += PacketSize {
		if !c.packet(pkts[i : i+PacketSize]) {
			n++
		}
	}
	return n
}

func (c *ContinuityCheck) packet(p []byte) bool {
	pid := PID(p)
	if pid == PIDNull || TransportError(p) {
		return true // stuffing, or a PID field that may be damaged
	}
	cc := CC(p)
	prev := c.last[pid]
	payload := HasPayload(p)
	last := Continuity(prev & 0x0f)
	dup := prev != 0 && payload && cc == last
	if dup {
		c.last[pid] = prev | ccDup
	} else {
		c.last[pid] = ccSeen | uint8(cc)
	}
	switch {
	case prev == 0 || Discontinuity(p):
		return true
	case dup:
		return prev&ccDup == 0 // a second repeat is an error
	case payload:
		return cc == last.Next()
	}
	return cc == last
}
