package reconws

import (
	"encoding/binary"
	"math/rand/v2"
)

// Frame opcodes and bits of RFC 6455 §5.2, for the data frames the write
// loop builds itself.
const (
	finBit       = 0x80
	maskBit      = 0x80
	opText       = 0x1
	opBinary     = 0x2
	maxHeaderLen = 14
)

// appendFrame appends one complete, masked websocket data frame carrying
// data to buf. A client must mask every frame it sends (RFC 6455 §5.3), so
// the payload is copied and masked in buf; the caller's slice, which may be
// shared with other subscribers of a hub topic, is never written.
func appendFrame(buf []byte, data []byte, text bool) []byte {
	op := byte(opBinary)
	if text {
		op = opText
	}
	n := len(data)
	switch {
	case n < 126:
		buf = append(buf, finBit|op, maskBit|byte(n))
	case n <= 0xFFFF:
		buf = append(buf, finBit|op, maskBit|126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, finBit|op, maskBit|127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	// gorilla/websocket draws its mask keys from math/rand too; the key only
	// has to be unpredictable to scripts in a browser, which we are not.
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	buf = append(buf, key[:]...)
	start := len(buf)
	buf = append(buf, data...)
	maskBytes(key, buf[start:])
	return buf
}

// maskBytes XORs b with the repeating key, starting at key offset 0: eight
// bytes at a time, since a video backlog is megabytes.
func maskBytes(key [4]byte, b []byte) {
	k32 := uint64(binary.LittleEndian.Uint32(key[:]))
	k64 := k32 | k32<<32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		binary.LittleEndian.PutUint64(b[i:], v^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}
