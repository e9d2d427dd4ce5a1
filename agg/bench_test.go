package agg

import (
	"runtime"
	"testing"
	"time"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// BenchmarkMux muxes a video feed (500 kbit/s-like frames, PCR, PSI every
// 100 ms) and an audio feed (MP2-sized frames) as ingest delivers them:
// a few packets per message. It reports MB/s of input, and allocations per
// packet and per message: only the output slabs (64 KiB of data, 64
// messages) allocate, amortised far below one per message.
func BenchmarkMux(b *testing.B) {
	video := tscheck.NewSynth(true, 0)
	audio := tscheck.NewSynth(false, 0)
	vin := video.Append(nil, 250) // 10 s
	ain := audio.Append(nil, 383)
	type msg struct {
		f *feed
		m *hub.Message
	}
	m := newMux(DefaultConfig(), testutil.Log(b), func(*hub.Message) {})
	fs := m.setFeeds([]string{"video0", "audio0"}, time.Unix(0, 0))
	var msgs []msg
	var vi, ai int
	for vi < len(vin) || ai < len(ain) {
		if vi < len(vin) {
			n := min(len(vin)-vi, 8*ts.PacketSize)
			msgs = append(msgs, msg{fs[0], &hub.Message{Data: vin[vi : vi+n], From: 1}})
			vi += n
		}
		if ai < len(ain) {
			n := min(len(ain)-ai, 2*ts.PacketSize)
			msgs = append(msgs, msg{fs[1], &hub.Message{Data: ain[ai : ai+n], From: 2}})
			ai += n
		}
	}
	size := int64(len(vin) + len(ain))
	packets := size / ts.PacketSize
	now := time.Unix(0, 0)
	b.SetBytes(size)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, x := range msgs {
			now = now.Add(time.Millisecond)
			m.input(x.f, x.m, now)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	allocs := float64(after.Mallocs - before.Mallocs)
	b.ReportMetric(allocs/float64(packets*int64(b.N)), "allocs/pkt")
	b.ReportMetric(allocs/float64(len(msgs)*b.N), "allocs/msg")
	b.ReportMetric(float64(packets*int64(b.N))/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(len(msgs)), "msgs/op")
}
