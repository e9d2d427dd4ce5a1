package agg

import (
	"context"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
)

// change is a rule update for a running muxer; done is closed when it is in
// force.
type change struct {
	feeds []string
	done  chan struct{}
}

// input is one message of one feed, passed from its pump to the muxer.
type input struct {
	f *feed
	m *hub.Message
}

// sub is the subscription of one feed and the pump that forwards it.
type sub struct {
	s      *hub.Sub
	cancel context.CancelFunc
}

// stream runs one muxer. Its goroutine (run) owns the mux and the feed
// subscriptions; one pump goroutine per feed moves that feed's messages
// into the muxer's input channel, because a hub subscription is a channel
// of its own and the set of feeds changes at run time.
type stream struct {
	name string
	h    *hub.Hub
	cfg  Config
	log  *logrus.Entry

	left   leftOut        // feeds the muxer leaves out (codec.go)
	counts streamCounters // for /metrics (counters.go)

	ctl    chan change
	in     chan input
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends the muxer and waits until it has published its last message.
func (s *stream) stop() {
	s.cancel()
	<-s.done
}

func (s *stream) run(ctx context.Context) {
	defer close(s.done)
	out := s.h.Join(StreamTopic(s.name))
	defer out.Leave()
	m := newMux(s.cfg, s.log, out.Publish)
	m.left = &s.left
	m.counts = &s.counts
	subs := make(map[*feed]sub)
	var pumps sync.WaitGroup
	defer func() {
		for _, sb := range subs {
			sb.cancel()
			sb.s.Close()
		}
		pumps.Wait()
		s.log.Info("stream stopped")
	}()
	s.log.Info("stream started")

	var waiting []chan struct{} // Sets waiting for a drain to end
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	armed := time.Time{}
	for {
		select {
		case <-ctx.Done():
			for _, w := range waiting {
				close(w)
			}
			return
		case c := <-s.ctl:
			now := time.Now()
			for _, f := range m.setFeeds(c.feeds, now) {
				fctx, cancel := context.WithCancel(ctx)
				hs := s.h.Subscribe(FeedTopic(f.name), hub.SubConfig{Policy: hub.Drop, Queue: s.cfg.Queue})
				subs[f] = sub{s: hs, cancel: cancel}
				pumps.Add(1)
				go func() {
					defer pumps.Done()
					pump(fctx, hs, f, s.in)
				}()
			}
			s.log.WithField("feeds", c.feeds).Info("stream rule set")
			waiting = append(waiting, c.done)
		case in := <-s.in:
			m.input(in.f, in.m, time.Now())
		case <-timer.C:
			armed = time.Time{}
			m.tick(time.Now())
		}
		// Unsubscribe the feeds whose drain has ended, then release the Sets
		// waiting for it: from here on none of their packets can leave.
		for f, sb := range subs {
			if f.removed {
				sb.cancel()
				sb.s.Close()
				delete(subs, f)
			}
		}
		if len(waiting) > 0 && !m.draining() {
			for _, w := range waiting {
				close(w)
			}
			waiting = waiting[:0]
		}
		if d := m.deadline(); !d.Equal(armed) {
			armed = d
			if d.IsZero() {
				timer.Stop()
			} else {
				timer.Reset(time.Until(d))
			}
		}
	}
}

// pump forwards one feed's messages to the muxer until ctx ends.
func pump(ctx context.Context, hs *hub.Sub, f *feed, to chan<- input) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-hs.C():
			select {
			case to <- input{f, m}:
			case <-ctx.Done():
				return
			}
		}
	}
}
