package cluster

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/crossbar"
)

// watch is a topic this relay takes from the others: a subscription to its
// subject and the Inlet that hands what arrives to the local topic.
type watch struct {
	c     *Cluster
	topic string
	sub   *nats.Subscription
	inlet *crossbar.Inlet
	// idle is when the topic's last local viewer or peer left; zero while
	// it has some. Owned by the interest loop.
	idle    time.Time
	stopped atomic.Bool

	// Owned by the subscription's goroutine.
	streams map[streamKey]*stream
	uses    uint64
}

// streamKey names one publisher's stream: its relay's run and its id there.
type streamKey struct{ instance, publisher uint64 }

// stream is what a receiver knows of one remote publisher's stream.
type stream struct {
	from uint64 // the id its messages carry locally
	next uint64 // the seq expected next
	used uint64 // watch.uses at its latest message
	rs   *resync
}

// maxStreams bounds the streams one watch remembers; the least recently
// heard goes first (a publisher that left).
const maxStreams = 64

// interestLoop subscribes to a topic's subject when the topic gains local
// viewers or peers, and unsubscribes Linger after it has lost them. It asks
// the relay for the truth each time (Wants), so the order in which
// changes were noted does not matter.
func (c *Cluster) interestLoop(ctx context.Context) {
	tick := time.NewTicker(max(c.cfg.Linger/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-tick.C:
		}
		c.mu.Lock()
		dirty := c.dirty
		c.dirty = make(map[string]bool)
		c.mu.Unlock()
		now := time.Now()
		for t := range dirty {
			c.reconcile(t, now)
		}
		c.expire(now)
		if len(dirty) > 0 {
			c.reportSoon()
		}
	}
}

// reconcile brings topic's subscription in line with its local clients.
func (c *Cluster) reconcile(topic string, now time.Time) {
	want := c.local.Wants(topic)
	c.mu.Lock()
	w := c.watches[topic]
	c.mu.Unlock()
	switch {
	case want && w != nil:
		w.idle = time.Time{}
	case want:
		c.subscribe(topic)
	case w != nil && w.idle.IsZero():
		w.idle = now
	}
}

// expire ends the watches idle for Linger whose topics still want nothing.
func (c *Cluster) expire(now time.Time) {
	c.mu.Lock()
	var due []*watch
	for _, w := range c.watches {
		if !w.idle.IsZero() && now.Sub(w.idle) >= c.cfg.Linger {
			due = append(due, w)
		}
	}
	c.mu.Unlock()
	for _, w := range due {
		if c.local.Wants(w.topic) {
			w.idle = time.Time{}
			continue
		}
		c.mu.Lock()
		delete(c.watches, w.topic)
		c.mu.Unlock()
		w.stop()
		c.log.WithField("stream", w.topic).Debug("cluster: no longer taking the topic from other relays")
	}
}

// subscribe starts taking topic from the other relays.
func (c *Cluster) subscribe(topic string) {
	in := c.local.Attach(topic)
	if in == nil {
		return // the relay is closing
	}
	w := &watch{c: c, topic: topic, inlet: in, streams: make(map[streamKey]*stream)}
	sub, err := c.nc.Subscribe(topicSubject(topic), w.onMsg)
	if err != nil {
		in.Close()
		c.log.WithFields(logrus.Fields{"stream": topic, "err": err}).Warn("cluster: cannot take the topic from other relays")
		return
	}
	if err := sub.SetPendingLimits(subPendingMsgs, subPendingBytes); err != nil {
		c.log.WithField("err", err).Debug("cluster: pending limits")
	}
	// Counted as this relay's own only once the server has it: until then
	// another relay's interest is not undercounted.
	if c.interest != nil && c.nc.Flush() == nil {
		c.own.Store(sub.Subject, true)
	}
	w.sub = sub
	c.mu.Lock()
	c.watches[topic] = w
	c.mu.Unlock()
	c.log.WithField("stream", topic).Debug("cluster: taking the topic from other relays")
}

// stop ends the subscription and lets the topic go. A message being handled
// as it stops finishes; none follows.
func (w *watch) stop() {
	if w.stopped.Swap(true) {
		return
	}
	if w.sub != nil {
		w.c.own.Delete(w.sub.Subject)
		_ = w.sub.Unsubscribe()
	}
	w.inlet.Close()
}

// onMsg handles one message from another relay, in the subscription's own
// goroutine: it checks the stream's sequence, holds a broken MPEG-TS stream
// back until a keyframe, and delivers the rest to the local topic.
func (w *watch) onMsg(m *nats.Msg) {
	if w.stopped.Load() {
		return
	}
	c := w.c
	h, err := parseHeader(m.Data)
	if err != nil {
		c.counters.bad.Add(1)
		return
	}
	if h.instance == c.instance {
		return // our own, should echo ever be on
	}
	c.counters.received.Add(1)
	w.uses++
	key := streamKey{h.instance, h.publisher}
	st := w.streams[key]
	lost := false
	switch {
	case st == nil:
		st = w.newStream(key)
		// Joining a stream that began before: it begins mid-PES here.
		lost = h.seq != 1
	case h.seq < st.next:
		return // seen already
	case h.seq > st.next:
		lost = true
	}
	st.next, st.used = h.seq+1, w.uses
	if lost {
		c.counters.gaps.Add(1)
	}
	buf, at := m.Data, headerLen
	if h.aligned() {
		if st.rs == nil {
			st.rs = &resync{}
		}
		if lost {
			st.rs.gap()
		}
		out, copied := st.rs.filter(buf[at:], at)
		if copied {
			if out == nil {
				return
			}
			buf = out
		}
	}
	w.inlet.Deliver(buf, at, h.text(), st.from)
}

// newStream starts following a remote stream, forgetting the least recently
// heard if there are too many.
func (w *watch) newStream(key streamKey) *stream {
	if len(w.streams) >= maxStreams {
		var oldest streamKey
		first := true
		for k, s := range w.streams {
			if first || s.used < w.streams[oldest].used {
				oldest, first = k, false
			}
		}
		delete(w.streams, oldest)
	}
	st := &stream{from: w.c.local.NewID()}
	w.streams[key] = st
	return st
}
