package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/ts"
)

// load is what fanout's publisher sends: a schedule of messages that
// repeats every period.
type load struct {
	name   string
	about  string
	period time.Duration
	shots  []shot // in time order, at within [0, period)
}

// shot is one message of a load's schedule.
type shot struct {
	at   time.Duration
	size int // bytes, whole TS packets
}

// vwStreamSecond is one second of what vw stream sends a relay for a
// 1 Mbit/s MPEG-1 + MP2 stream: the README's camera feed (mpeg1video
// -b:v 1000k -bf 0 -g 25, 640x480 at 25 fps) and microphone feed (mp2
// 64 kbit/s at 44.1 kHz) combined by one stream rule. TestWireMessages
// measures it, at the websocket endpoint vw stream pushes to, and checks
// that this schedule still matches: there, over 10 s, 72.9 messages a
// second, 1.09 Mbit/s; sizes p50 376 B (2 packets), p75 3572 B, p90
// 4324 B, p99 14476 B, max 18236 B. Each feed's message is one ffmpeg
// write (-muxdelay 0.001: one frame), so per second there are 38 audio
// frames (1152 samples each) and 10 PAT+PMT pairs of 2 packets, 24 video
// P-frames of 18 to 34 packets, and one I-frame of 77 to 97 packets. The
// source is the README's lavfi testsrc stand-in with sensor-like noise
// (-vf noise): testsrc alone is so easy to code that the encoder spends
// only 0.52 Mbit/s (P-frames of 5 packets), below what a camera costs.
var vwStreamSecond = []struct{ packets, perSec int }{
	{2, 38},  // an MP2 frame and its PES header
	{2, 10},  // PAT and PMT, every 100 ms
	{22, 24}, // an MPEG-1 P-frame
	{92, 1},  // an MPEG-1 I-frame, one a GOP
}

// streamLoad is vwStreamSecond as a schedule: each kind of message evenly
// spread over the second, the kinds starting together as they do at a
// keyframe.
func streamLoad() load {
	l := load{name: "vw stream", period: time.Second}
	for _, k := range vwStreamSecond {
		for i := range k.perSec {
			l.shots = append(l.shots, shot{at: time.Second * time.Duration(i) / time.Duration(k.perSec), size: k.packets * ts.PacketSize})
		}
	}
	slices.SortStableFunc(l.shots, func(a, b shot) int { return int(a.at - b.at) })
	l.about = fmt.Sprintf("what vw stream sends for a 1 Mbit/s MPEG-1 + MP2 stream with the README's feeds: %.0f messages/s, p50 %d B, p90 %d B, %.2f Mbit/s",
		l.msgsPerSec(), l.sizePercentile(50), l.sizePercentile(90), l.bytesPerSec()*8/1e6)
	return l
}

// fixedLoad is messages of one size at the given rate in bits per second.
func fixedLoad(size int, rate float64) load {
	size = max(1, size/ts.PacketSize) * ts.PacketSize
	l := load{
		name:   fmt.Sprintf("%.0f KiB", math.Max(1, math.Round(float64(size)/1024))),
		period: time.Duration(float64(time.Second) * float64(size*8) / rate),
		shots:  []shot{{size: size}},
	}
	l.about = fmt.Sprintf("%d-byte messages (%d packets), %.1f/s, %.1f Mbit/s: larger than vw stream's, so per-message costs weigh less",
		size, size/ts.PacketSize, l.msgsPerSec(), rate/1e6)
	return l
}

func (l load) msgsPerSec() float64 { return float64(len(l.shots)) / l.period.Seconds() }

func (l load) bytesPerSec() float64 {
	n := 0
	for _, s := range l.shots {
		n += s.size
	}
	return float64(n) / l.period.Seconds()
}

// size is the size of the message with sequence number seq.
func (l load) size(seq uint64) int { return l.shots[seq%uint64(len(l.shots))].size }

func (l load) sizePercentile(p int) int {
	sizes := make([]int, len(l.shots))
	for i, s := range l.shots {
		sizes[i] = s.size
	}
	slices.Sort(sizes)
	return sizes[(len(sizes)-1)*p/100]
}

// publish sends the load's TS-shaped messages on schedule, each stamped
// with its send time and sequence number in the first packet's payload.
// Behind schedule, it sends at once.
func publish(ctx context.Context, c *websocket.Conn, l load, seq *atomic.Uint64) error {
	largest := 0
	for _, s := range l.shots {
		largest = max(largest, s.size)
	}
	buf := make([]byte, largest)
	for i := 0; i < len(buf); i += ts.PacketSize {
		buf[i], buf[i+1], buf[i+2], buf[i+3] = ts.SyncByte, 0x01, 0x00, 0x10
	}
	buf[1] |= 0x40 // payload unit start, as a PES would have
	start := time.Now()
	for n := uint64(0); ; n++ {
		s := l.shots[n%uint64(len(l.shots))]
		due := start.Add(time.Duration(n/uint64(len(l.shots)))*l.period + s.at)
		if err := sleep(ctx, time.Until(due)); err != nil {
			return nil
		}
		msg := buf[:s.size]
		for i := 0; i < len(msg); i += ts.PacketSize {
			msg[i+3] = 0x10 | byte(n)&0x0f
		}
		binary.BigEndian.PutUint64(msg[4:], uint64(time.Now().UnixNano()))
		binary.BigEndian.PutUint64(msg[12:], n)
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			return err
		}
		seq.Store(n + 1)
	}
}
