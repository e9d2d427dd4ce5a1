// Package wsframe owns how vw writes websocket frames (RFC 6455 §5.2): one
// header codec for the relay's unmasked frames and the reconnecting
// client's masked ones, and the masking of a payload, so that the two
// writers cannot disagree on the wire format. gorilla/websocket still does
// every handshake and all reading; this is only for the writes vw makes
// itself, to frame a message once for many viewers or a backlog into one
// write.
//
// Every function writes into memory the caller gives: none allocates when
// the destination has room.
package wsframe

import (
	"encoding/binary"
	"slices"
)

// Opcodes of the frames vw writes. They equal gorilla/websocket's message
// types (websocket.TextMessage, …), which callers may pass instead.
const (
	Text   = 1
	Binary = 2
	Close  = 8
	Ping   = 9
	Pong   = 10
)

// MaxHeader is the longest header: a 64-bit length and a mask key.
// MaxUnmasked is the longest without a mask key, a server's.
const (
	MaxHeader   = 14
	MaxUnmasked = 10
)

const (
	finBit  = 0x80
	maskBit = 0x80
)

// HeaderLen returns the length of the header of a frame carrying n bytes,
// with a mask key (a client's frame) or without (a server's).
func HeaderLen(n int, masked bool) int {
	h := 2
	switch {
	case n > 0xffff:
		h = 10
	case n >= 126:
		h = 4
	}
	if masked {
		h += 4
	}
	return h
}

// PutHeader writes the header of one final frame of opcode op carrying n
// bytes into b, and returns its length, HeaderLen(n, key != nil): masked
// with *key, or unmasked when key is nil. b must be at least that long.
// Masking the payload is the caller's (Mask), so that a header can be put
// in front of a payload already in place.
func PutHeader(b []byte, op, n int, key *[4]byte) int {
	b[0] = finBit | byte(op)
	h := 2
	switch {
	case n < 126:
		b[1] = byte(n)
	case n <= 0xffff:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		h = 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		h = 10
	}
	if key == nil {
		return h
	}
	b[1] |= maskBit
	copy(b[h:h+4], key[:])
	return h + 4
}

// AppendFrame appends one whole final frame of opcode op carrying payload
// to dst: masked with *key (the payload is copied, then masked in dst, so
// the caller's slice, which may be shared, is never written), or unmasked
// when key is nil.
func AppendFrame(dst []byte, op int, payload []byte, key *[4]byte) []byte {
	h := HeaderLen(len(payload), key != nil)
	dst = slices.Grow(dst, h+len(payload))
	start := len(dst)
	dst = dst[:start+h]
	PutHeader(dst[start:], op, len(payload), key)
	dst = append(dst, payload...)
	if key != nil {
		Mask(*key, dst[start+h:])
	}
	return dst
}

// Mask XORs b with the repeating key, starting at key offset 0: eight bytes
// at a time, since a video backlog is megabytes. Masking twice unmasks.
func Mask(key [4]byte, b []byte) {
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
