package ts

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

func TestCRCTable(t *testing.T) {
	for i := range 256 {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04c11db7
			} else {
				c <<= 1
			}
		}
		if crcTable[i] != c {
			t.Fatalf("crcTable[%d] = %#08x, want %#08x", i, crcTable[i], c)
		}
	}
}

func TestCRC32(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want uint32
	}{
		// The catalogued check value of CRC-32/MPEG-2.
		{"check", []byte("123456789"), 0x0376e6e7},
		{"empty", nil, 0xffffffff},
		// ffmpeg's PAT (tsid 1, program 1 -> PMT 0x1000) carries 2a b1 04 b2.
		{"ffmpeg PAT", []byte{0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00}, 0x2ab104b2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CRC32(tc.in); got != tc.want {
				t.Fatalf("CRC32 = %#08x, want %#08x", got, tc.want)
			}
		})
	}
}

// sample returns the packets of testdata/av.ts: 0.3 s of mpeg1video + mp2
// written by ffmpeg 5.1 the way feeds are (-muxdelay 0.001).
func sample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/av.ts")
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%PacketSize != 0 {
		t.Fatalf("sample is %d bytes, not whole packets", len(b))
	}
	return b
}

// TestSample walks real ffmpeg output with every parser of the package and
// checks what ffmpeg is known to write.
func TestSample(t *testing.T) {
	in := sample(t)
	var pat, pmt SectionReader
	var progs []Program
	var m PMT
	pes := map[uint16][]PESHeader{}
	pcrs := 0
	pmtPID := uint16(0xffff)
	for i := 0; i < len(in); i += PacketSize {
		p := in[i : i+PacketSize]
		off, ok := PayloadOffset(p)
		if !ok {
			t.Fatalf("packet %d: malformed header", i/PacketSize)
		}
		if _, _, ok := PCR(p); ok {
			pcrs++
		}
		switch pid := PID(p); {
		case pid == PIDPAT:
			pat.Push(p, func(b []byte) {
				s, _, err := ParseSection(b)
				if err != nil {
					t.Fatalf("PAT: %v", err)
				}
				progs, err = ParsePAT(s, progs[:0])
				if err != nil || len(progs) != 1 {
					t.Fatalf("PAT: %v, programs %v", err, progs)
				}
				pmtPID = progs[0].PID
			})
		case pid == pmtPID:
			pmt.Push(p, func(b []byte) {
				s, _, err := ParseSection(b)
				if err != nil {
					t.Fatalf("PMT: %v", err)
				}
				if err := ParsePMT(s, &m); err != nil {
					t.Fatalf("PMT: %v", err)
				}
			})
		case PayloadUnitStart(p) && pid >= 0x100:
			h, err := ParsePES(p[off:])
			if err != nil {
				t.Fatalf("packet %d: PES: %v", i/PacketSize, err)
			}
			pes[pid] = append(pes[pid], h)
		}
	}
	if len(progs) != 1 || progs[0] != (Program{1, 0x1000}) {
		t.Fatalf("PAT programs %v, want program 1 on 0x1000", progs)
	}
	if len(m.Streams) != 2 || m.Streams[0].Type != 0x02 || m.Streams[1].Type != 0x03 || m.PCRPID != 0x100 {
		t.Fatalf("PMT %+v, want mpeg video 0x02 and mpeg audio 0x03 with PCR on 0x100", m)
	}
	if pcrs == 0 {
		t.Fatal("no PCR found")
	}
	for _, s := range m.Streams {
		hs := pes[s.PID]
		if len(hs) < 5 {
			t.Fatalf("PID %#x: %d PES headers", s.PID, len(hs))
		}
		for _, h := range hs {
			if h.PTS == 0 || (IsVideoType(s.Type) && !IsVideoStreamID(h.StreamID)) || (IsAudioType(s.Type) && !IsAudioStreamID(h.StreamID)) {
				t.Fatalf("PID %#x type %#x: PES header %+v", s.PID, s.Type, h)
			}
		}
	}
}

func TestPSIRoundTrip(t *testing.T) {
	m := PMT{Program: 1, Version: 7, PCRPID: 0x101, Info: []byte{5, 4, 'H', 'D', 'M', 'V'}, Streams: []Stream{
		{Type: 0x02, PID: 0x101},
		{Type: 0x03, PID: 0x102, Info: []byte{0x0a, 4, 'e', 'n', 'g', 0}},
	}}
	sec := AppendPMT(nil, &m)
	s, n, err := ParseSection(sec)
	if err != nil || n != len(sec) || s.Version != 7 || s.ID != 1 {
		t.Fatalf("ParseSection: %v, n %d of %d, %+v", err, n, len(sec), s)
	}
	var got PMT
	if err := ParsePMT(s, &got); err != nil {
		t.Fatal(err)
	}
	if got.PCRPID != m.PCRPID || len(got.Streams) != 2 || !bytes.Equal(got.Streams[1].Info, m.Streams[1].Info) || !bytes.Equal(got.Info, m.Info) {
		t.Fatalf("PMT round trip: got %+v, want %+v", got, m)
	}
	pkts, cc := AppendSectionPackets(nil, 0x1000, 15, sec)
	if len(pkts) != PacketSize || cc != 0 || PID(pkts) != 0x1000 || !PayloadUnitStart(pkts) || CC(pkts) != 15 {
		t.Fatalf("packetized PMT: %d bytes, next cc %d, header % x", len(pkts), cc, pkts[:5])
	}
	// A section larger than a packet spans packets and reassembles.
	for i := range 60 {
		m.Streams = append(m.Streams, Stream{Type: 0x06, PID: uint16(0x200 + i), Info: []byte{0x52, 1, byte(i)}})
	}
	sec = AppendPMT(nil, &m)
	pkts, _ = AppendSectionPackets(nil, 0x1000, 0, sec)
	var r SectionReader
	var sections [][]byte
	for i := 0; i < len(pkts); i += PacketSize {
		r.Push(pkts[i:i+PacketSize], func(b []byte) { sections = append(sections, bytes.Clone(b)) })
	}
	if len(sections) != 1 || !bytes.Equal(sections[0], sec) {
		t.Fatalf("reassembled %d sections from %d packets, want the one of %d bytes", len(sections), len(pkts)/PacketSize, len(sec))
	}
}

func TestParseSectionErrors(t *testing.T) {
	good := AppendPAT(nil, 1, 0, []Program{{1, 0x1000}})
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"cut", good[:len(good)-1], ErrShort},
		{"crc", bad, ErrCRC},
		{"short form", []byte{0, 0x30, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrSyntax},
		{"length too small", []byte{0, 0xb0, 2, 0, 0}, ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := ParseSection(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPacketSection(t *testing.T) {
	pat := AppendPAT(nil, 1, 0, []Program{{1, 0x1000}})
	one, _ := AppendSectionPackets(nil, PIDPAT, 0, pat)
	// A 600-byte PMT spans four packets.
	big := PMT{Program: 1, PCRPID: 0x100}
	for i := range 100 {
		big.Streams = append(big.Streams, Stream{Type: 6, PID: uint16(0x200 + i)})
	}
	four, _ := AppendSectionPackets(nil, 0x1000, 0, AppendPMT(nil, &big))
	patch := func(p []byte, f func(p []byte)) []byte {
		p = bytes.Clone(p[:PacketSize])
		f(p)
		return p
	}
	for _, tc := range []struct {
		name string
		p    []byte
		want error
	}{
		{"whole in the packet", one, nil},
		{"after a pointer", patch(one, func(p []byte) {
			copy(p[8:], p[5:5+len(pat)])
			p[4] = 3
		}), nil},
		{"after an adaptation field", patch(one, func(p []byte) {
			copy(p[6:], p[4:5+len(pat)])
			p[3], p[4], p[5] = 0x30, 1, 0
		}), nil},
		{"bad CRC", patch(one, func(p []byte) { p[5+len(pat)-1] ^= 1 }), ErrCRC},
		{"not a start", patch(one, func(p []byte) { p[1] &^= 0x40 }), ErrSyntax},
		{"no payload", patch(one, func(p []byte) { p[3], p[4] = 0x20, 183 }), ErrSyntax},
		{"damaged", patch(one, func(p []byte) { p[1] |= 0x80 }), ErrSyntax},
		{"pointer past the end", patch(one, func(p []byte) { p[4] = 183 }), ErrShort},
		{"goes on in the next packet", four, ErrShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := PacketSection(tc.p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err == nil {
				if progs, err := ParsePAT(s, nil); err != nil || len(progs) != 1 || progs[0] != (Program{1, 0x1000}) {
					t.Fatalf("PAT %v (%v), want program 1 on 0x1000", progs, err)
				}
			}
		})
	}
}

func TestParsePES(t *testing.T) {
	hdr := func(flags byte, hdl byte, extra ...byte) []byte {
		return append([]byte{0, 0, 1, 0xc0, 0, 0, 0x81, flags, hdl}, extra...)
	}
	pts := []byte{0x21, 0, 1, 0, 1}
	for _, tc := range []struct {
		name string
		in   []byte
		want PESHeader
		err  error
	}{
		{"pts", hdr(0x80, 5, pts...), PESHeader{StreamID: 0xc0, DataOffset: 14, PTS: 9}, nil},
		{"pts dts", hdr(0xc0, 10, append(pts, pts...)...), PESHeader{StreamID: 0xc0, DataOffset: 19, PTS: 9, DTS: 14}, nil},
		{"none", hdr(0, 0), PESHeader{StreamID: 0xc0, DataOffset: 9}, nil},
		{"padding stream", []byte{0, 0, 1, 0xbe, 0, 4}, PESHeader{StreamID: 0xbe, Length: 4, DataOffset: 6}, nil},
		{"cut in pts", hdr(0x80, 5, 0x21, 0), PESHeader{}, ErrShort},
		{"cut in header", []byte{0, 0, 1, 0xe0, 0, 0, 0x80}, PESHeader{}, ErrShort},
		{"no start code", []byte{0, 1, 1, 0xe0, 0, 0, 0x80, 0, 0}, PESHeader{}, ErrSyntax},
		{"forbidden flags", hdr(0x40, 5, pts...), PESHeader{}, ErrSyntax},
		{"header too short for pts", hdr(0x80, 2, pts...), PESHeader{}, ErrSyntax},
		{"bad marker", []byte{0, 0, 1, 0xe0, 0, 0, 0x40, 0, 0}, PESHeader{}, ErrSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParsePES(tc.in)
			if !errors.Is(err, tc.err) || (err == nil && h != tc.want) {
				t.Fatalf("ParsePES = %+v, %v; want %+v, %v", h, err, tc.want, tc.err)
			}
		})
	}
}

func TestTimestamps(t *testing.T) {
	for _, v := range []uint64{0, 1, 90000, 1<<32 + 12345, TimestampMask} {
		b := []byte{0x31, 0, 0, 0, 0}
		PutTimestamp(b, v)
		if got := Timestamp(b); got != v || b[0]&0xf0 != 0x30 || b[0]&1 != 1 || b[2]&1 != 1 || b[4]&1 != 1 {
			t.Fatalf("PutTimestamp(%d): read back %d, bytes % x", v, got, b)
		}
	}
	p := make([]byte, PacketSize)
	p[0], p[3], p[4], p[5] = SyncByte, 0x30, 7, afPCR
	for _, v := range []uint64{0, 12345678, TimestampMask} {
		if !SetPCR(p, v, 299) {
			t.Fatal("SetPCR found no PCR")
		}
		if b, e, ok := PCR(p); !ok || b != v || e != 299 {
			t.Fatalf("PCR round trip of %d: %d %d %v", v, b, e, ok)
		}
	}
}

func TestPayloadOffset(t *testing.T) {
	pkt := func(afc, afl, flags byte) []byte {
		p := bytes.Repeat([]byte{0xff}, PacketSize)
		p[0], p[1], p[2], p[3], p[4], p[5] = SyncByte, 0x41, 0, afc, afl, flags
		return p
	}
	for _, tc := range []struct {
		name string
		p    []byte
		off  int
		ok   bool
	}{
		{"payload only", pkt(0x10, 0, 0), 4, true},
		{"one stuffing byte", pkt(0x30, 0, 0), 5, true},
		{"pcr", pkt(0x30, 7, afPCR), 12, true},
		{"adaptation only", pkt(0x20, 183, 0), PacketSize, true},
		{"adaptation only, short", pkt(0x20, 100, 0), PacketSize, false},
		{"adaptation too long", pkt(0x30, 183, 0), 188, false},
		{"pcr past the field", pkt(0x30, 3, afPCR), 8, false},
		{"private data past the field", pkt(0x30, 2, afPrivate), 7, false},
		{"reserved control", pkt(0x00, 0, 0), 0, false},
		{"short packet", []byte{SyncByte, 0, 0, 0x10}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			off, ok := PayloadOffset(tc.p)
			if ok != tc.ok || (ok && off != tc.off) {
				t.Fatalf("PayloadOffset = %d, %v; want %d, %v", off, ok, tc.off, tc.ok)
			}
		})
	}
}

func TestNoAllocs(t *testing.T) {
	in := sample(t)
	var r SectionReader
	var m PMT
	m.Streams = make([]Stream, 0, 8)
	allocs := testing.AllocsPerRun(20, func() {
		for i := 0; i < len(in); i += PacketSize {
			p := in[i : i+PacketSize]
			off, ok := PayloadOffset(p)
			if ok && PayloadUnitStart(p) && PID(p) == 0x100 {
				if h, err := ParsePES(p[off:]); err == nil && h.PTS > 0 {
					_ = Timestamp(p[off+h.PTS:])
				}
			}
			PCR(p)
			if PID(p) == 0x1000 {
				r.Push(p, func(b []byte) {
					if s, _, err := ParseSection(b); err == nil {
						_ = ParsePMT(s, &m)
					}
				})
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("per-packet parsing allocates %v times per pass, want 0", allocs)
	}
}

// FuzzPSI feeds arbitrary bytes to the section parsers, and to the section
// reader as packet payloads. Whatever parses must build back to a section
// that parses to the same table.
func FuzzPSI(f *testing.F) {
	f.Add(AppendPAT(nil, 1, 0, []Program{{1, 0x1000}}))
	f.Add(AppendPMT(nil, &PMT{Program: 1, PCRPID: 0x100, Streams: []Stream{{Type: 2, PID: 0x100}, {Type: 3, PID: 0x101, Info: []byte{10, 4, 'e', 'n', 'g', 0}}}}))
	f.Add([]byte{0x02, 0xb0, 0xff, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		if s, n, err := ParseSection(in); err == nil {
			if n > len(in) || n < 12 {
				t.Fatalf("section size %d of %d bytes", n, len(in))
			}
			if progs, err := ParsePAT(s, nil); err == nil {
				again, _, err := ParseSection(AppendPAT(nil, s.ID, s.Version, progs))
				if err != nil {
					t.Fatalf("rebuilt PAT does not parse: %v", err)
				}
				got, _ := ParsePAT(again, nil)
				if len(got) != len(progs) {
					t.Fatalf("PAT round trip: %v, want %v", got, progs)
				}
				for i := range got {
					if got[i] != progs[i] {
						t.Fatalf("PAT round trip: %v, want %v", got, progs)
					}
				}
			}
			var m PMT
			if err := ParsePMT(s, &m); err == nil {
				again, _, err := ParseSection(AppendPMT(nil, &m))
				if err != nil {
					t.Fatalf("rebuilt PMT does not parse: %v", err)
				}
				var got PMT
				if err := ParsePMT(again, &got); err != nil || got.PCRPID != m.PCRPID || len(got.Streams) != len(m.Streams) {
					t.Fatalf("PMT round trip: %+v (%v), want %+v", got, err, m)
				}
			}
		}
		// The same bytes as the payload of consecutive packets of one PID.
		var r SectionReader
		for i, cc := 0, uint8(0); i < len(in); cc++ {
			p := make([]byte, PacketSize)
			p[0], p[3] = SyncByte, 0x10|cc&0x0f
			if i == 0 {
				p[1] = 0x40
			}
			i += copy(p[4:], in[i:])
			r.Push(p, func(b []byte) {
				if len(b) < 3 || len(b) > MaxSectionSize {
					t.Fatalf("reader emitted a %d-byte section", len(b))
				}
				_, _, _ = ParseSection(b)
			})
		}
	})
}

// FuzzPES checks that the PES parser never reads outside its input, that
// the offsets it returns lie within it, and that timestamps written there
// read back.
func FuzzPES(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1, 0, 0, 1, 0xb3}, uint64(90000))
	f.Add([]byte{0, 0, 1, 0xc0, 0, 0xd7, 0x81, 0xc0, 10, 0x31, 0, 1, 0, 1, 0x11, 0, 1, 0, 1, 0xff, 0xfd}, uint64(1<<33-1))
	f.Add([]byte{0, 0, 1, 0xbe, 0, 2, 0xff, 0xff}, uint64(0))
	f.Fuzz(func(t *testing.T, in []byte, ts uint64) {
		h, err := ParsePES(in)
		if err != nil {
			return
		}
		if h.DataOffset < 6 || (h.PTS > 0 && h.PTS+5 > len(in)) || (h.DTS > 0 && h.DTS+5 > len(in)) {
			t.Fatalf("header %+v out of a %d-byte input", h, len(in))
		}
		if h.PTS > 0 {
			b := bytes.Clone(in)
			PutTimestamp(b[h.PTS:], ts)
			if got := Timestamp(b[h.PTS:]); got != ts&TimestampMask {
				t.Fatalf("timestamp %d read back as %d", ts&TimestampMask, got)
			}
			if h2, err := ParsePES(b); err != nil || h2 != h {
				t.Fatalf("after writing a PTS the header parses as %+v, %v; was %+v", h2, err, h)
			}
		}
	})
}

// FuzzPacket checks the adaptation field reader on any 188 bytes: it
// reports a payload offset inside the packet, and a PCR it finds can be
// rewritten and read back without touching bytes outside the field.
func FuzzPacket(f *testing.F) {
	in := sample(f)
	for i := 0; i < 6*PacketSize; i += PacketSize {
		f.Add(in[i:i+PacketSize], uint64(i))
	}
	f.Fuzz(func(t *testing.T, p []byte, v uint64) {
		if len(p) < PacketSize {
			p = append(p, make([]byte, PacketSize-len(p))...)
		}
		p = p[:PacketSize]
		off, ok := PayloadOffset(p)
		if !ok {
			return
		}
		if off < 4 || off > PacketSize {
			t.Fatalf("payload offset %d", off)
		}
		if base, ext, ok := PCR(p); ok {
			q := bytes.Clone(p)
			SetPCR(q, v, ext)
			if b, e, _ := PCR(q); b != v&TimestampMask || e != ext {
				t.Fatalf("PCR %d,%d written as %d read back %d,%d", base, ext, v&TimestampMask, b, e)
			}
			if !bytes.Equal(q[:6], p[:6]) || !bytes.Equal(q[12:], p[12:]) {
				t.Fatal("SetPCR wrote outside the PCR field")
			}
		}
	})
}

// BenchmarkPacketPath reads what the muxer reads of every packet: header,
// adaptation field and PCR, and the PES header at a payload start.
func BenchmarkPacketPath(b *testing.B) {
	in := sample(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < len(in); i += PacketSize {
			p := in[i : i+PacketSize]
			off, ok := PayloadOffset(p)
			if !ok {
				b.Fatal("malformed sample")
			}
			PCR(p)
			if PayloadUnitStart(p) && PID(p) >= 0x100 && PID(p) < 0x1000 {
				if _, err := ParsePES(p[off:]); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// BenchmarkAligner cuts the sample fed in 1000-byte reads.
func BenchmarkAligner(b *testing.B) {
	in := sample(b)
	dst := make([]byte, 0, len(in)+PacketSize)
	var a Aligner
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		dst = dst[:0]
		for i := 0; i < len(in); i += 1000 {
			dst = a.Append(dst, in[i:min(i+1000, len(in))])
		}
	}
}
