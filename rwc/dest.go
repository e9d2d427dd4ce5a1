package rwc

import (
	"bufio"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/reconws"
)

// dest is one destination. Set and Refresh write what is wanted under mu and
// wake the pump; the pump goroutine owns everything else.
type dest struct {
	r      *RWC
	id     string
	hubID  uint64 // the subscription's ID, also From of what the remote sends
	topic  atomic.Pointer[hub.Topic]
	client atomic.Pointer[reconws.Client] // the one receiving the stream

	mu       sync.Mutex
	want     Rule
	wantSub  *hub.Sub // subscribed by Set or Refresh, not yet taken by the pump
	wantFile *os.File // opened by Set, not yet taken by the pump
	subTopic string   // topic of wantSub if any, else of the pump's sub
	curTopic string   // topic of the pump's sub

	// Shedding counters, written by the pump, read by Stats.
	shedding                  atomic.Bool
	behind                    atomic.Int64 // time.Duration
	skippedGOPs, skippedBytes atomic.Uint64
	skippedAudio              atomic.Uint64

	wake     chan struct{} // cap 1: something in want changed
	stop     chan struct{}
	stopOnce sync.Once
	stopped  chan struct{} // subscription left, recording flushed and closed
	done     chan struct{} // and every client closed
}

func (r *RWC) start(rule Rule, topic string, f *os.File) *dest {
	d := &dest{
		r: r, id: rule.ID, hubID: r.h.NewID(),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		done:    make(chan struct{}),
	}
	d.update(rule, topic, f)
	r.wg.Add(1)
	go d.run()
	return d
}

// update records what is wanted. A new topic is subscribed here, not in the
// pump, so that from the moment Set or Refresh returns nothing published to
// it is missed; the pump leaves the old topic once it has taken the new one.
func (d *dest) update(rule Rule, topic string, f *os.File) {
	d.mu.Lock()
	d.want = rule
	if topic != d.subTopic {
		if d.wantSub != nil { // superseded before the pump took it
			d.wantSub.Close()
			d.wantSub, d.subTopic = nil, d.curTopic
		}
		// Never two subscriptions of one topic: a message would arrive
		// in both and be sent twice.
		if topic != d.subTopic {
			d.wantSub = d.r.h.Subscribe(topic, hub.SubConfig{ID: d.hubID, Queue: d.r.cfg.Queue, Policy: hub.Drop})
			d.subTopic = topic
		}
	}
	if f != nil {
		if d.wantFile != nil {
			d.wantFile.Close() // superseded before the pump took it
		}
		d.wantFile = f
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dest) signalStop() { d.stopOnce.Do(func() { close(d.stop) }) }

// halt stops the pump and waits until its recording is closed.
func (d *dest) halt() {
	d.signalStop()
	<-d.stopped
}

// conn is a client and the rule fields it was dialled with.
type conn struct {
	c          *reconws.Client
	url, token string
}

func (c *conn) same(rule Rule) bool {
	return c != nil && c.url == rule.Destination && c.token == rule.Token
}

// pump is the state the destination's goroutine owns.
type pump struct {
	d   *dest
	log *logrus.Entry // id, stream

	sub   *hub.Sub
	shed  *shedder
	cur   *conn // receives the stream
	next  *conn // dialled for a swap, not yet connected
	swap  *time.Timer
	swapC <-chan time.Time
	old   []*reconws.Client // closing, waited for before the pump ends

	file   *os.File
	w      *bufio.Writer
	name   string
	flush  *time.Ticker
	flushC <-chan time.Time
}

func (d *dest) run() {
	defer d.r.wg.Done()
	defer close(d.done)
	p := &pump{d: d, log: d.r.log.WithField("id", d.id), shed: newShedder(d)}
	for {
		var nextReady <-chan struct{}
		if p.next != nil {
			nextReady = p.next.c.Ready()
		}
		var in <-chan *hub.Message
		if p.sub != nil {
			in = p.sub.C()
		}
		select {
		case m := <-in:
			p.forward(m)
		case <-nextReady:
			p.promote()
		case <-p.swapC:
			p.log.WithFields(logrus.Fields{"url": p.next.url, "old": p.cur.url}).
				Warn("new destination did not connect in time; closing the old one anyway")
			p.promote()
		case <-d.wake:
			p.reconcile()
		case <-p.flushC:
			p.flushFile()
		case <-d.stop:
			p.shutdown()
			return
		}
		p.reap()
	}
}

// reconcile brings the pump to what Set or Refresh last asked for.
func (p *pump) reconcile() {
	d := p.d
	d.mu.Lock()
	want, sub, f := d.want, d.wantSub, d.wantFile
	d.wantSub, d.wantFile = nil, nil
	if sub != nil {
		d.curTopic = sub.Topic().Name()
	}
	d.mu.Unlock()
	p.log = d.r.log.WithFields(logrus.Fields{"id": d.id, "stream": want.Stream})
	p.shed.log, p.shed.maxDelay = p.log, maxDelay(want, d.r.cfg.MaxDelay)

	if sub != nil {
		p.move(sub)
	}
	switch {
	case f != nil:
		p.closeFile()
		p.openFile(f, want.File)
	case want.File == "" && p.file != nil:
		p.closeFile()
	}
	switch {
	case p.cur == nil:
		p.cur = p.dial(want)
		if p.cur != nil {
			d.client.Store(p.cur.c)
		}
	case p.next != nil && p.next.same(want):
	case p.cur.same(want):
		if p.next != nil { // changed back before the swap finished
			p.retire(p.next.c)
			p.next = nil
			p.stopSwapTimer()
		}
	default:
		if p.next != nil {
			p.retire(p.next.c)
		}
		if p.next = p.dial(want); p.next == nil {
			p.stopSwapTimer()
			return
		}
		if p.swap == nil {
			p.swap = time.NewTimer(d.r.cfg.SwapTimeout)
			p.swapC = p.swap.C
		}
		p.log.WithFields(logrus.Fields{"url": want.Destination, "old": p.cur.url}).Info("swapping destination: dialling the new one first")
	}
}

func (p *pump) dial(rule Rule) *conn {
	cfg := p.d.r.cfg
	d := p.d
	c, err := reconws.Start(d.r.ctx, reconws.Config{
		URL:          rule.Destination,
		Token:        rule.Token,
		TLS:          cfg.TLS,
		DialTimeout:  cfg.DialTimeout,
		BackoffMin:   cfg.BackoffMin,
		BackoffMax:   cfg.BackoffMax,
		PingInterval: cfg.PingInterval,
		CloseTimeout: cfg.CloseTimeout,
		Queue:        cfg.Queue,
		OnMessage: func(m reconws.Message) {
			// Into the topic this destination reads, marked as ours so
			// that it does not come straight back to the remote.
			if t := d.topic.Load(); t != nil {
				t.Publish(&hub.Message{Data: m.Data, Text: m.Text, From: d.hubID})
			}
		},
	}, p.log)
	if err != nil { // Set validated the URL; this is a bug, not a rule
		p.log.WithField("err", err).Error("cannot start client")
		return nil
	}
	return &conn{c: c, url: rule.Destination, token: rule.Token}
}

// promote makes the dialled client current at a message boundary (the pump
// is between messages) and lets the old one flush its queue and close.
func (p *pump) promote() {
	old := p.cur
	p.cur, p.next = p.next, nil
	p.d.client.Store(p.cur.c)
	p.stopSwapTimer()
	if old != nil {
		p.retire(old.c)
		p.log.WithFields(logrus.Fields{"url": p.cur.url, "old": old.url}).Info("swapped destination")
	}
}

func (p *pump) stopSwapTimer() {
	if p.swap != nil {
		p.swap.Stop()
		p.swap, p.swapC = nil, nil
	}
}

func (p *pump) retire(c *reconws.Client) {
	c.Close()
	p.old = append(p.old, c)
}

// reap forgets retired clients that have finished closing.
func (p *pump) reap() {
	if len(p.old) == 0 {
		return
	}
	live := p.old[:0]
	for _, c := range p.old {
		select {
		case <-c.Done():
		default:
			live = append(live, c)
		}
	}
	clear(p.old[len(live):])
	p.old = live
}

// move switches to ns, subscribed before the old one is left so that nothing
// published meanwhile is missed, then forwards what the old queue still held.
func (p *pump) move(ns *hub.Sub) {
	d := p.d
	old := p.sub
	p.sub = ns
	d.topic.Store(ns.Topic())
	if old == nil {
		return
	}
	old.Close()
	p.forwardQueued(old)
	p.log.WithFields(logrus.Fields{"topic": ns.Topic().Name(), "old": old.Topic().Name()}).Info("destination moved to a new topic")
}

// forwardQueued forwards what a closed subscription still holds.
func (p *pump) forwardQueued(s *hub.Sub) {
	for {
		select {
		case m := <-s.C():
			p.forward(m)
		default:
			return
		}
	}
}

func (p *pump) forward(m *hub.Message) {
	if p.cur != nil {
		data := m.Data
		if !m.Text {
			data = p.shed.filter(data, p.cur.c, time.Now())
		}
		if len(data) > 0 || len(m.Data) == 0 {
			p.cur.c.Send(data, m.Text) // refusals are counted by the client
		}
	}
	if p.w != nil {
		if _, err := p.w.Write(m.Data); err != nil {
			p.log.WithField("err", err).WithField("file", p.name).Error("recording failed; stopped recording")
			p.closeFile()
		}
	}
}

func (p *pump) openFile(f *os.File, name string) {
	p.file, p.name = f, name
	p.w = bufio.NewWriterSize(f, 64<<10)
	p.flush = time.NewTicker(p.d.r.cfg.FlushInterval)
	p.flushC = p.flush.C
	p.log.WithField("file", name).Info("recording")
}

func (p *pump) flushFile() {
	if p.w == nil {
		return
	}
	if err := p.w.Flush(); err != nil {
		p.log.WithField("err", err).WithField("file", p.name).Error("recording failed; stopped recording")
		p.closeFile()
	}
}

func (p *pump) closeFile() {
	if p.file == nil {
		return
	}
	p.flush.Stop()
	err := p.w.Flush()
	if cerr := p.file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		p.log.WithField("err", err).WithField("file", p.name).Error("recording not fully written")
	} else {
		p.log.WithField("file", p.name).Info("recording closed")
	}
	p.file, p.w, p.name, p.flush, p.flushC = nil, nil, "", nil, nil
}

// shutdown leaves the topic and closes the recording at once, then closes
// every client gracefully (flush, close frame) and waits for them.
func (p *pump) shutdown() {
	d := p.d
	// Take what Set handed over last, so that a rule deleted at once still
	// records what was published to it.
	d.mu.Lock()
	want, sub, f := d.want, d.wantSub, d.wantFile
	d.wantSub, d.wantFile = nil, nil
	d.mu.Unlock()
	if f != nil {
		p.closeFile()
		p.openFile(f, want.File)
	}
	if sub != nil {
		p.move(sub)
	}
	if p.sub != nil {
		// What was published before the stop is still sent and recorded.
		p.sub.Close()
		p.forwardQueued(p.sub)
	}
	d.topic.Store(nil)
	p.closeFile()
	close(d.stopped)
	p.stopSwapTimer()
	for _, c := range []*conn{p.cur, p.next} {
		if c != nil {
			p.retire(c.c)
		}
	}
	for _, c := range p.old {
		<-c.Done()
	}
}
