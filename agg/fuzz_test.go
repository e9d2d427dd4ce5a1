package agg

import (
	"testing"
	"time"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// FuzzMux feeds arbitrary packets (whole 188-byte units starting with the
// sync byte, as ingest delivers) from two feeds, with rule changes, feed
// restarts and time passing, and checks that every output packet is well
// formed, continuity counters are right on every PID and PSI parses.
func FuzzMux(f *testing.F) {
	f.Add(tscheck.NewSynth(true, 0).Append(nil, 3), tscheck.NewSynth(false, 1<<33-1000).Append(nil, 4), []byte{0, 1, 2, 3, 4, 5, 6, 7})
	s := tscheck.NewSynth(false, 0)
	s.NoPMT = true
	f.Add(s.Append(nil, 3), []byte{ts.SyncByte, 0x41, 0x00, 0x30, 190}, []byte{9, 9, 9})
	f.Fuzz(func(t *testing.T, a, b, ops []byte) {
		var out []byte
		m := newMux(withDefaults(t, Config{Grace: 50 * time.Millisecond}), testutil.Log(t), func(msg *hub.Message) {
			if len(msg.Data)%ts.PacketSize != 0 {
				t.Fatalf("output message of %d bytes", len(msg.Data))
			}
			out = append(out, msg.Data...)
		})
		now := time.Unix(0, 0)
		feeds := map[string]*feed{}
		set := func(names ...string) {
			for _, f := range m.setFeeds(names, now) {
				feeds[f.name] = f
			}
		}
		set("a", "b")
		packets := func(in []byte) [][]byte {
			var ps [][]byte
			for len(in) > 0 {
				p := make([]byte, ts.PacketSize)
				n := copy(p, in)
				in = in[n:]
				p[0] = ts.SyncByte
				ps = append(ps, p)
			}
			return ps
		}
		pa, pb := packets(a), packets(b)
		from := map[string]uint64{"a": 1, "b": 2}
		for i := 0; len(pa)+len(pb) > 0; i++ {
			op := byte(i)
			if len(ops) > 0 {
				op = ops[i%len(ops)]
			}
			switch op % 8 {
			case 0:
				set("a")
			case 1:
				set("a", "b")
			case 2:
				from["b"]++
			case 3:
				now = now.Add(time.Duration(op) * time.Millisecond)
				m.tick(now)
			}
			name, ps := "a", &pa
			if op&1 == 1 && len(pb) > 0 || len(pa) == 0 {
				name, ps = "b", &pb
			}
			k := min(len(*ps), 1+int(op>>4))
			var data []byte
			for _, p := range (*ps)[:k] {
				data = append(data, p...)
			}
			*ps = (*ps)[k:]
			if f := feeds[name]; f != nil && !f.removed {
				m.input(f, &hub.Message{Data: data, From: from[name]}, now)
			}
			now = now.Add(time.Millisecond)
		}
		now = now.Add(time.Second)
		m.tick(now)
		r := tscheck.Walk(out)
		if r.Malformed > 0 || len(r.CCErrors) > 0 || r.BadPSI > 0 {
			t.Fatalf("%d malformed packets, CC errors %v, %d bad PSI sections", r.Malformed, r.CCErrors, r.BadPSI)
		}
	})
}
