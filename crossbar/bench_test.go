package crossbar

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/ts"
)

// BenchmarkFanout measures the relay's throughput delivering one publisher's
// messages (16 KiB of TS packets) to many viewers over loopback websockets:
// one op is one message delivered to every viewer. Viewers and relay share
// the process, so this is throughput, not the relay's own CPU: for CPU per
// delivered GB against the naive floor, run `go run ./cmd/vwbench fanout`.
func BenchmarkFanout(b *testing.B) {
	for _, viewers := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("viewers=%d", viewers), func(b *testing.B) {
			r := startRelay(b, Config{Queue: 1 << 16, QueueBytes: 1 << 40, MaxConnsPerAddr: 1 << 20, MaxViewers: 1 << 20})
			pub := r.dial(b, "/in/bench")
			msg := make([]byte, 87*ts.PacketSize)
			for i := 0; i < len(msg); i += ts.PacketSize {
				msg[i] = ts.SyncByte
			}
			var wg sync.WaitGroup
			conns := make([]*websocket.Conn, viewers)
			for i := range conns {
				conns[i] = r.dial(b, "/out/bench")
			}
			r.waitClients(b, "/out/bench", 1, viewers, 0)
			errs := make(chan error, viewers)
			b.SetBytes(int64(len(msg) * viewers))
			b.ReportAllocs()
			b.ResetTimer()
			for _, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range b.N {
						_, rd, err := c.NextReader()
						if err != nil {
							errs <- err
							return
						}
						if _, err := io.Copy(io.Discard, rd); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			for range b.N {
				if err := pub.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			b.StopTimer()
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
			}
			if d := r.topic("/out/bench").DroppedViewers; d != 0 {
				b.Fatalf("%d viewers dropped", d)
			}
		})
	}
}

// BenchmarkKeyframeCache measures what following a stream for its keyframe
// cache costs the relay per message of one 20 KB picture (a 4 Mbit/s
// stream at 25 pictures a second, as `vwbench path` sends): it is paid in
// the publisher's goroutine, before any viewer gets the message.
func BenchmarkKeyframeCache(b *testing.B) {
	c := newKeyframeCache(newCacheBudget(0, 0), time.Now)
	syn := tscheck.NewSynth(true, 90000)
	syn.FrameSize = 20000
	msgs := make([]*hub.Message, 250) // ten seconds, ten GOPs
	for i := range msgs {
		msgs[i] = &hub.Message{Data: syn.Append(nil, 1), From: 1}
	}
	b.SetBytes(int64(len(msgs[0].Data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c.Keep(msgs[i%len(msgs)])
	}
}
