package ts

import (
	"bytes"
	"math/rand"
	"testing"
)

// packets returns n valid-looking packets with distinct payloads.
func packets(n int) []byte {
	b := make([]byte, 0, n*PacketSize)
	for i := range n {
		p := make([]byte, PacketSize)
		p[0] = SyncByte
		p[1], p[2], p[3] = 0x01, 0x00, 0x10|byte(i&0xf)
		for j := 4; j < PacketSize; j++ {
			p[j] = byte(i*7 + j)
			if p[j] == SyncByte {
				p[j] = 0
			}
		}
		b = append(b, p...)
	}
	return b
}

// feed runs src through an Aligner in chunks cut at the given sizes.
func feed(src []byte, sizes []int) []byte {
	out, _ := feedCount(src, sizes)
	return out
}

// feedCount is feed that also returns the Aligner's resyncs.
func feedCount(src []byte, sizes []int) ([]byte, uint64) {
	var a Aligner
	var out []byte
	for _, n := range sizes {
		n = min(n, len(src))
		out = a.Append(out, src[:n])
		src = src[n:]
	}
	return a.Append(out, src), a.Resyncs()
}

func TestAlignerClean(t *testing.T) {
	in := packets(100)
	rng := rand.New(rand.NewSource(1))
	for _, tc := range []struct {
		name  string
		sizes []int
	}{
		{"whole", []int{len(in)}},
		{"packet chunks", []int{188, 188 * 78, 188 * 3}},
		{"one byte", nil},
		{"odd", []int{1, 187, 189, 375, 377, 1000, 32768}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sizes := tc.sizes
			if len(sizes) == 0 {
				for range len(in) {
					sizes = append(sizes, 1)
				}
			}
			if got := feed(in, sizes); !bytes.Equal(got, in) {
				t.Fatalf("got %d bytes, want the %d bytes in unchanged", len(got), len(in))
			}
		})
	}
	for i := range 200 {
		var sizes []int
		for n := 0; n < len(in); {
			k := 1 + rng.Intn(600)
			sizes = append(sizes, k)
			n += k
		}
		if got := feed(in, sizes); !bytes.Equal(got, in) {
			t.Fatalf("random split %d: got %d bytes, want %d unchanged", i, len(got), len(in))
		}
	}
}

// TestAlignerGarbage checks that whatever the split, whole packets come out
// and every packet not next to the garbage survives, and that when the
// garbage is in view nothing but real packets come out. (A packet just before
// garbage is dropped when the garbage is in view, since it may be truncated;
// at a chunk's end it is trusted rather than held back until the next chunk,
// which would add a chunk's delay to every frame.)
func TestAlignerGarbage(t *testing.T) {
	in := packets(10)
	real := map[string]bool{}
	for i := 0; i < len(in); i += PacketSize {
		real[string(in[i:i+PacketSize])] = true
	}
	for _, tc := range []struct {
		name    string
		input   []byte
		want    []byte // packets that must come out
		resyncs uint64
	}{
		{"leading garbage", cat([]byte("garbage\x47\x47 bytes"), in), in, 1},
		{"garbage between packets drops the one before", cat(in[:5*188], []byte{1, 2, 3, SyncByte, 5}, in[5*188:]), cat(in[:4*188], in[5*188:]), 1},
		{"truncated packet", cat(in[:3*188], in[3*188:3*188+100], in[4*188:]), cat(in[:3*188], in[5*188:]), 1},
		{"two runs of garbage", cat(in[:3*188], []byte{1, 2}, in[3*188:7*188], []byte{3}, in[7*188:]), cat(in[:2*188], in[3*188:6*188], in[7*188:]), 2},
		{"only garbage", bytes.Repeat([]byte{SyncByte, 0, 0}, 500), nil, 0},
		{"trailing partial packet", cat(in, in[:100]), in, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{1, 7, 188, 1000, len(tc.input)} {
				var sizes []int
				for n := 0; n < len(tc.input); n += step {
					sizes = append(sizes, step)
				}
				got, resyncs := feedCount(tc.input, sizes)
				if resyncs != tc.resyncs {
					t.Fatalf("step %d: %d resyncs, want %d", step, resyncs, tc.resyncs)
				}
				if len(got)%PacketSize != 0 {
					t.Fatalf("step %d: %d bytes out, not whole packets", step, len(got))
				}
				seen := map[string]bool{}
				for i := 0; i < len(got); i += PacketSize {
					p := string(got[i : i+PacketSize])
					if step == len(tc.input) && !real[p] {
						t.Fatalf("step %d: packet %d out is not one that went in", step, i/PacketSize)
					}
					seen[p] = true
				}
				for i := 0; i < len(tc.want); i += PacketSize {
					if !seen[string(tc.want[i:i+PacketSize])] {
						t.Fatalf("step %d: packet %d of the wanted ones is missing", step, i/PacketSize)
					}
				}
			}
		})
	}
}

func TestAlignerAllocs(t *testing.T) {
	in := packets(50)
	dst := make([]byte, 0, len(in))
	var a Aligner
	allocs := testing.AllocsPerRun(100, func() {
		dst = a.Append(dst[:0], in[:1000])
		dst = a.Append(dst, in[1000:])
	})
	if allocs != 0 {
		t.Fatalf("Append allocates %v times per call, want 0", allocs)
	}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// FuzzAligner checks on any input and any split that every emitted packet is
// whole and starts with the sync byte; that with the whole input in view each
// is 188 bytes that went in together; and that a clean stream passes through
// unchanged however it is split.
func FuzzAligner(f *testing.F) {
	f.Add(packets(3), uint8(1))
	f.Add(cat([]byte{SyncByte, 1, 2}, packets(2)), uint8(100))
	f.Add(bytes.Repeat([]byte{SyncByte}, 600), uint8(188))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		whole := feed(in, nil)
		if len(whole)%PacketSize != 0 {
			t.Fatalf("output of %d bytes is not whole packets", len(whole))
		}
		for i := 0; i < len(whole); i += PacketSize {
			if whole[i] != SyncByte || !bytes.Contains(in, whole[i:i+PacketSize]) {
				t.Fatalf("packet %d is not 188 bytes of the input starting with the sync byte", i/PacketSize)
			}
		}
		var sizes []int
		for n := 0; n < len(in); n += int(step) + 1 {
			sizes = append(sizes, int(step)+1)
		}
		split := feed(in, sizes)
		for i := 0; i < len(split); i += PacketSize {
			if split[i] != SyncByte {
				t.Fatalf("split in %d-byte chunks: packet %d does not start with the sync byte", int(step)+1, i/PacketSize)
			}
		}
		// Whole packets of the input, cut anywhere, come out unchanged (from
		// three packets on: the first sync byte needs two to confirm it).
		clean := in[:len(in)/PacketSize*PacketSize]
		if len(clean) < (confirmations+1)*PacketSize {
			return
		}
		for i := 0; i < len(clean); i += PacketSize {
			clean[i] = SyncByte
		}
		if got := feed(clean, sizes); !bytes.Equal(got, clean) {
			t.Fatalf("a clean stream of %d packets split in %d-byte chunks came out as %d bytes", len(clean)/PacketSize, int(step)+1, len(got))
		}
	})
}
