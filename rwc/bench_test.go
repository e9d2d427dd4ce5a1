package rwc

import (
	"testing"
	"time"

	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/reconws"
)

// liveLink is a connection with nothing queued: the shedder follows the
// stream and lets every message through as it is.
type liveLink struct{}

func (liveLink) Backlog() reconws.Backlog { return reconws.Backlog{} }

// BenchmarkShed measures what shedding's bookkeeping costs a destination
// on a link that keeps up, per message of one 20 KB picture (a 4 Mbit/s
// stream at 25 pictures a second, as `vwbench path` sends): it is paid on
// the path of every message, between the hub and the socket.
func BenchmarkShed(b *testing.B) {
	s, _ := newTestShedder(time.Second)
	syn := tscheck.NewSynth(true, 90000)
	syn.FrameSize = 20000
	msgs := make([][]byte, 250) // ten seconds, ten GOPs
	for i := range msgs {
		msgs[i] = syn.Append(nil, 1)
	}
	now := time.Now()
	b.SetBytes(int64(len(msgs[0])))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		now = now.Add(40 * time.Millisecond)
		if out := s.filter(msgs[i%len(msgs)], liveLink{}, now); len(out) != len(msgs[i%len(msgs)]) {
			b.Fatalf("a live link lost %d bytes of a message", len(msgs[i%len(msgs)])-len(out))
		}
	}
}
