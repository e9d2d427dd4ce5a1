package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// stampedViewers are websocket viewers of messages that publish stamped
// (send time at byte 4, sequence number at byte 12), each with a reader
// that notes when every message came. fanout and cluster measure with them.
type stampedViewers struct {
	viewers  []*stampedViewer
	readers  sync.WaitGroup
	stopping atomic.Bool
	dropped  atomic.Int64 // viewers the server disconnected
	once     sync.Once
}

// stampedViewer is one viewer; its reader alone writes samples, read once
// the readers are done.
type stampedViewer struct {
	conn    *websocket.Conn
	samples []sample
	seen    atomic.Uint64 // 1 + the latest sequence number
}

// sample is one message as a viewer received it.
type sample struct {
	seq uint64
	at  time.Time
	lat time.Duration
}

// dial connects n more viewers to url and starts their readers.
func (vs *stampedViewers) dial(ctx context.Context, url string, n int) error {
	for range n {
		c, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
		if err != nil {
			return fmt.Errorf("viewer %d of %s: %w", len(vs.viewers), url, err)
		}
		v := &stampedViewer{conn: c}
		vs.viewers = append(vs.viewers, v)
		vs.readers.Add(1)
		go vs.read(v)
	}
	return nil
}

func (vs *stampedViewers) read(v *stampedViewer) {
	defer vs.readers.Done()
	var stamp [20]byte // TS header, send time, sequence number
	for {
		_, r, err := v.conn.NextReader()
		if err != nil {
			if !vs.stopping.Load() {
				vs.dropped.Add(1)
			}
			return
		}
		if _, err := io.ReadFull(r, stamp[:]); err != nil {
			continue
		}
		now := time.Now()
		if _, err := io.Copy(io.Discard, r); err != nil {
			continue
		}
		sent := int64(binary.BigEndian.Uint64(stamp[4:12]))
		seq := binary.BigEndian.Uint64(stamp[12:20])
		v.samples = append(v.samples, sample{seq: seq, at: now, lat: now.Sub(time.Unix(0, sent))})
		v.seen.Store(seq + 1)
	}
}

// allSeen reports whether every viewer has received message last-1 (or a
// later one).
func (vs *stampedViewers) allSeen(last uint64) bool {
	for _, v := range vs.viewers {
		if v.seen.Load() < last {
			return false
		}
	}
	return true
}

// close disconnects the viewers and waits for their readers.
func (vs *stampedViewers) close() {
	vs.once.Do(func() {
		vs.stopping.Store(true)
		for _, v := range vs.viewers {
			_ = v.conn.Close()
		}
		vs.readers.Wait()
	})
}

// result counts, once the viewers are closed, the bytes they received
// between t0 and t1 (the server's CPU was measured over that time, so a
// server that falls behind is charged for what it delivered, not for what
// was sent), and the latency and loss of the messages [first, last) sent
// then.
func (vs *stampedViewers) result(l load, first, last uint64, t0, t1 time.Time) fanoutResult {
	res := fanoutResult{dropped: int(vs.dropped.Load())}
	for _, v := range vs.viewers {
		got := uint64(0)
		for _, s := range v.samples {
			if !s.at.Before(t0) && s.at.Before(t1) {
				res.delivered += uint64(l.size(s.seq))
			}
			if s.seq >= first && s.seq < last {
				got++
				res.latencies = append(res.latencies, s.lat)
			}
		}
		res.lost += (last - first) - min(got, last-first)
	}
	slices.Sort(res.latencies)
	return res
}
