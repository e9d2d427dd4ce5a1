package cluster

import (
	"encoding/binary"
	"errors"
)

// A message between relays is the payload a client sent, behind a fixed
// header of headerLen bytes:
//
//	0      version (1)
//	1      flags: flagText, flagAligned
//	2..9   instance: the sending relay's random id for this run
//	10..17 the publisher's id on that relay
//	18..25 seq: the publisher's message number, from 1, no gaps as sent
//
// instance and publisher together name one stream of messages; a receiver
// that sees seq skip knows it lost some (a full queue on either side, a
// slow-consumer drop, a route that broke). A relay that restarts has a new
// instance, so its publishers' numbers never seem to go backwards.
const (
	headerLen   = 26
	wireVersion = 1

	flagText    = 1 << 0 // a websocket text message
	flagAligned = 1 << 1 // whole MPEG-TS packets, each starting with 0x47
)

// header is the decoded header of a message between relays.
type header struct {
	flags     byte
	instance  uint64
	publisher uint64
	seq       uint64
}

func (h header) text() bool    { return h.flags&flagText != 0 }
func (h header) aligned() bool { return h.flags&flagAligned != 0 }

// put writes h into b, which must be headerLen long.
func (h header) put(b []byte) {
	b[0] = wireVersion
	b[1] = h.flags
	binary.BigEndian.PutUint64(b[2:], h.instance)
	binary.BigEndian.PutUint64(b[10:], h.publisher)
	binary.BigEndian.PutUint64(b[18:], h.seq)
}

var errHeader = errors.New("not a vw relay message")

// parseHeader reads the header at the start of b.
func parseHeader(b []byte) (header, error) {
	if len(b) < headerLen || b[0] != wireVersion {
		return header{}, errHeader
	}
	return header{
		flags:     b[1],
		instance:  binary.BigEndian.Uint64(b[2:]),
		publisher: binary.BigEndian.Uint64(b[10:]),
		seq:       binary.BigEndian.Uint64(b[18:]),
	}, nil
}

// alignedTS reports whether b is whole MPEG-TS packets.
func alignedTS(b []byte) bool {
	if len(b) == 0 || len(b)%188 != 0 {
		return false
	}
	for i := 0; i < len(b); i += 188 {
		if b[i] != 0x47 {
			return false
		}
	}
	return true
}
