package ts

import (
	"os"
	"testing"
)

// pkt returns one packet of pid with counter cc; payload says whether it
// carries one (else it is all adaptation field); disc sets the
// discontinuity_indicator.
func pkt(pid uint16, cc Continuity, payload, disc bool) []byte {
	p := make([]byte, PacketSize)
	p[0] = SyncByte
	SetPID(p, pid)
	p[3] = 0x20 | byte(cc)
	p[4] = 183
	if payload {
		p[3] |= 0x10
		p[4] = 1
	}
	if disc {
		p[5] = 0x80
	}
	return p
}

func TestContinuityCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkts [][]byte
		want int
	}{
		{"in order, across the wrap", [][]byte{pkt(0x100, 14, true, false), pkt(0x100, 15, true, false), pkt(0x100, 0, true, false)}, 0},
		{"one lost", [][]byte{pkt(0x100, 3, true, false), pkt(0x100, 5, true, false), pkt(0x100, 6, true, false)}, 1},
		{"PIDs count apart", [][]byte{pkt(0x100, 3, true, false), pkt(0x101, 9, true, false), pkt(0x100, 4, true, false), pkt(0x101, 10, true, false)}, 0},
		{"no payload keeps the counter", [][]byte{pkt(0x100, 3, true, false), pkt(0x100, 3, false, false), pkt(0x100, 4, true, false)}, 0},
		{"no payload that moves it", [][]byte{pkt(0x100, 3, true, false), pkt(0x100, 4, false, false)}, 1},
		{"one duplicate", [][]byte{pkt(0x100, 3, true, false), pkt(0x100, 3, true, false), pkt(0x100, 4, true, false)}, 0},
		{"two duplicates", [][]byte{pkt(0x100, 3, true, false), pkt(0x100, 3, true, false), pkt(0x100, 3, true, false)}, 1},
		{"discontinuity flagged", [][]byte{pkt(0x100, 3, true, false), pkt(0x100, 9, true, true), pkt(0x100, 10, true, false)}, 0},
		{"null packets", [][]byte{pkt(PIDNull, 3, true, false), pkt(PIDNull, 7, true, false)}, 0},
		{"a jump and back", [][]byte{pkt(0x100, 3, true, false), pkt(0x100, 8, true, false), pkt(0x100, 4, true, false)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c ContinuityCheck
			var b []byte
			for _, p := range tc.pkts {
				b = append(b, p...)
			}
			if got := c.Check(b); got != tc.want {
				t.Fatalf("%d errors, want %d", got, tc.want)
			}
		})
	}
}

// TestContinuityCheckFFmpeg: ffmpeg's own output has no errors; the same
// with one media packet cut out has exactly one.
func TestContinuityCheckFFmpeg(t *testing.T) {
	b, err := os.ReadFile("testdata/mpeg1-g5.ts")
	if err != nil {
		t.Fatal(err)
	}
	var c ContinuityCheck
	if n := c.Check(b); n != 0 {
		t.Fatalf("ffmpeg's recording: %d errors, want 0", n)
	}
	i := len(b) / PacketSize / 2 * PacketSize
	for PID(b[i:]) != 0x100 || !HasPayload(b[i:]) {
		i += PacketSize
	}
	cut := append(append([]byte{}, b[:i]...), b[i+PacketSize:]...)
	c = ContinuityCheck{}
	if n := c.Check(cut); n != 1 {
		t.Fatalf("one packet cut out: %d errors, want 1", n)
	}
}

func TestContinuityCheckAllocs(t *testing.T) {
	b := packets(50)
	var c ContinuityCheck
	if a := testing.AllocsPerRun(100, func() { c.Check(b) }); a != 0 {
		t.Fatalf("Check allocates %v times per call, want 0", a)
	}
}

// BenchmarkContinuityCheck checks the sample, as the ingest does each read.
func BenchmarkContinuityCheck(b *testing.B) {
	in := sample(b)
	var c ContinuityCheck
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		c.Check(in)
	}
}
