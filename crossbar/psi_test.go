package crossbar

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/wsframe"
	"github.com/vwlab/vw/ts"
)

// ffmpegTS returns a second of real MPEG-TS (video and audio) from ffmpeg.
func ffmpegTS(t *testing.T) []byte {
	t.Helper()
	ctx := testutil.Context(t, 20*time.Second)
	out, err := encodeClip(t, ctx, "testsrc=size=64x64:rate=25", 1, "-c:v", "mpeg1video", "-bf", "0", "-c:a", "mp2")
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	if len(out) < 20*ts.PacketSize || len(out)%ts.PacketSize != 0 {
		t.Fatalf("ffmpeg wrote %d bytes, not a stream of packets", len(out))
	}
	return out
}

// lastPSI returns the last PAT and PMT packets (PID 0 and ffmpeg's 0x1000)
// in b.
func lastPSI(b []byte) (pat, pmt []byte) {
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		switch p := b[i : i+ts.PacketSize]; ts.PID(p) {
		case 0:
			pat = p
		case 0x1000:
			pmt = p
		}
	}
	return pat, pmt
}

// TestLateViewerGetsPSI checks that a viewer joining a running stream first
// receives the stream's current PAT and PMT, then the stream, however the
// publisher cuts its messages; and that a viewer there from the start gets
// the stream as sent. The keyframe cache is off (CacheBytes < 0), as when
// a GOP outgrows it: the PAT/PMT are what is left (the GOP is tested in
// cache_test.go).
func TestLateViewerGetsPSI(t *testing.T) {
	stream := ffmpegTS(t)
	// The part sent before the late viewer joins ends just after the second
	// PAT/PMT pair; what follows holds no PSI for a while.
	var cut, psiSeen int
	for i := 0; i < len(stream); i += ts.PacketSize {
		if ts.PID(stream[i:]) == 0x1000 {
			if psiSeen++; psiSeen == 2 {
				cut = i + ts.PacketSize
				break
			}
		}
	}
	if cut == 0 {
		t.Fatal("ffmpeg's stream has fewer than two PMTs")
	}
	next := stream[cut : cut+5*ts.PacketSize]
	if pat, pmt := lastPSI(next); pat != nil || pmt != nil {
		t.Fatal("the packets after the cut hold PSI; pick another cut")
	}
	wantPAT, wantPMT := lastPSI(stream[:cut])

	for _, tc := range []struct {
		name  string
		chunk int
	}{
		{"whole packets", 7 * ts.PacketSize},
		{"cut anywhere", 1000},
		{"one message", cut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRelay(t, Config{CacheBytes: -1})
			pub := r.dial(t, "/in/cam")
			early := r.dial(t, "/out/cam")
			r.waitClients(t, "/out/cam", 1, 1, 0)
			var sent []byte
			for b := stream[:cut]; len(b) > 0; {
				k := min(tc.chunk, len(b))
				send(t, pub, bin, b[:k])
				sent = append(sent, b[:k]...)
				b = b[k:]
			}
			var got []byte
			for len(got) < len(sent) {
				_, b := read(t, early)
				got = append(got, b...)
			}
			if !bytes.Equal(got, sent) {
				t.Fatal("the early viewer did not get the stream as sent")
			}

			late := r.dial(t, "/out/cam")
			r.waitClients(t, "/out/cam", 1, 2, 0)
			send(t, pub, bin, next)
			_, first := read(t, late)
			if !bytes.Equal(first, slices.Concat(wantPAT, wantPMT)) {
				t.Fatalf("the late viewer's first message is %d bytes (PIDs %v), want the last PAT and PMT sent", len(first), pids(first))
			}
			if _, b := read(t, late); !bytes.Equal(b, next) {
				t.Fatalf("the late viewer's second message is %d bytes, want the stream's next %d", len(b), len(next))
			}
			if _, b := read(t, early); !bytes.Equal(b, next) {
				t.Fatal("the early viewer got something other than the stream's next message")
			}

			// With the publisher gone the tables are forgotten: a viewer
			// waiting for the stream to return gets only what is sent.
			_ = pub.Close()
			r.waitClients(t, "/out/cam", 0, 2, 0)
			waiting := r.dial(t, "/out/cam")
			pub2 := r.dial(t, "/in/cam")
			r.waitClients(t, "/out/cam", 1, 3, 0)
			send(t, pub2, bin, next)
			if _, b := read(t, waiting); !bytes.Equal(b, next) {
				t.Fatalf("a viewer of a restarted stream got %d bytes (PIDs %v) first, want the stream's %d", len(b), pids(b), len(next))
			}
		})
	}
}

func pids(b []byte) []uint16 {
	var out []uint16
	for i := 0; i+ts.PacketSize <= len(b); i += ts.PacketSize {
		out = append(out, ts.PID(b[i:]))
	}
	return out
}

// FuzzPSI feeds arbitrary packets to the PAT/PMT cache: nothing panics, and
// what it would send a viewer is a whole number of packets, a PAT first,
// framed as one binary websocket message.
func FuzzPSI(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range [][]byte{b, pad(b)} {
			if len(p) >= ts.PacketSize {
				_, _ = parsePAT(p[:ts.PacketSize])
				_ = isPMT(p[:ts.PacketSize])
			}
		}
		var c psiCache
		c.observe(pad(b))
		m := c.message()
		if m == nil {
			return
		}
		if len(m.Data)%ts.PacketSize != 0 || ts.PID(m.Data) != ts.PIDPAT {
			t.Fatalf("cached tables: %d bytes, PIDs %v", len(m.Data), pids(m.Data))
		}
		if len(m.Header) != wsframe.HeaderLen(len(m.Data), false) || m.Header[0] != 0x82 {
			t.Fatalf("bad frame header % x for %d bytes", m.Header, len(m.Data))
		}
	})
}

// pad makes b whole packets with sync bytes, so that the fuzzer's bytes
// reach the table parsers.
func pad(b []byte) []byte {
	n := (len(b) + ts.PacketSize - 1) / ts.PacketSize * ts.PacketSize
	p := make([]byte, n)
	copy(p, b)
	for i := 0; i < n; i += ts.PacketSize {
		p[i] = ts.SyncByte
	}
	return p
}

func TestParsePAT(t *testing.T) {
	stream := ffmpegTS(t)
	pat, pmt := lastPSI(stream)
	if got, ok := parsePAT(pat); !ok || !slices.Equal(got, []uint16{0x1000}) {
		t.Fatalf("ffmpeg's PAT names %v (ok %v), want [0x1000]", got, ok)
	}
	if !isPMT(pmt) {
		t.Fatal("ffmpeg's PMT is not recognised")
	}
	// A PMT damaged in transit is not kept for late viewers.
	bad := slices.Clone(pmt)
	bad[19] ^= 0x01 // a stream PID
	if isPMT(bad) {
		t.Fatal("a PMT with a bad CRC is taken")
	}
	for _, tc := range []struct {
		name  string
		patch func(p []byte)
	}{
		{"not a section start", func(p []byte) { p[1] &^= 0x40 }},
		{"pointer past the end", func(p []byte) { p[4] = 200 }},
		{"section longer than the packet", func(p []byte) { p[6], p[7] = 0xb0|0x0f, 0xff }},
		{"wrong table", func(p []byte) { p[5] = 0x02 }},
		{"adaptation field fills the packet", func(p []byte) { p[3] |= 0x20; p[4] = 183 }},
		{"bad CRC", func(p []byte) { p[16] ^= 0x01 }}, // the PMT PID, changed in transit
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := slices.Clone(pat)
			tc.patch(p)
			if got, ok := parsePAT(p); ok {
				t.Fatalf("parsed %v from a broken PAT", got)
			}
		})
	}
}
