// Package ts owns MPEG-TS at the packet level: cutting a byte stream into
// aligned 188-byte packets, reading and rewriting packet header fields in
// place, and parsing and building the PSI tables (PAT, PMT). Everything here
// is a pure function over bytes, allocation-free on the per-packet path, and
// fuzzed.
package ts

const (
	// PacketSize is the size of an MPEG-TS packet.
	PacketSize = 188
	// SyncByte starts every packet.
	SyncByte = 0x47
)
