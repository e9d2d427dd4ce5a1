package cluster

import (
	"os"
	"testing"

	"github.com/vwlab/vw/ts"
)

// FuzzParseHeader: any bytes parse or are refused without panic, and a
// header put back reads the same.
func FuzzParseHeader(f *testing.F) {
	b := make([]byte, headerLen)
	header{flags: flagAligned, instance: 7, publisher: 3, seq: 1}.put(b)
	f.Add(b)
	f.Add([]byte{wireVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			return
		}
		back := make([]byte, headerLen)
		h.put(back)
		if h2, err := parseHeader(back); err != nil || h2 != h {
			t.Fatalf("%+v put and parsed is %+v, %v", h, h2, err)
		}
	})
}

// FuzzResync: whatever arrives after a gap, the filter never panics, and
// what it forwards is whole packets, behind the room asked for, starting
// with the PAT once it starts.
func FuzzResync(f *testing.F) {
	for _, name := range []string{"mpeg1-g5.ts", "h264-g10.ts", "av.ts"} {
		if b, err := os.ReadFile("../ts/testdata/" + name); err == nil {
			f.Add(b, uint16(3))
		}
	}
	f.Add(make([]byte, 2*ts.PacketSize), uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, cut uint16) {
		b = b[:len(b)/ts.PacketSize*ts.PacketSize]
		var r resync
		started := false
		for i := 0; i < len(b); {
			n := min(len(b)-i, (int(cut)%9+1)*ts.PacketSize)
			if i > 0 && cut%5 == 0 {
				r.gap()
			}
			out, copied := r.filter(b[i:i+n], headerLen)
			i += n
			if !copied || out == nil {
				continue
			}
			body := out[headerLen:]
			if len(body)%ts.PacketSize != 0 {
				t.Fatalf("forwarded %d bytes: not whole packets", len(body))
			}
			if !started && ts.PID(body) != ts.PIDPAT {
				t.Fatalf("forwarding after a gap starts with PID %#x", ts.PID(body))
			}
			started = true
		}
	})
}
