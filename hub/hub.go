// Package hub owns topics: named flows of immutable messages fanned out to
// subscribers. Every subscriber has its own bounded queue, and a publisher
// never waits for one: a subscriber that falls behind loses messages (counted)
// or is kicked out, depending on its policy. A message's buffer is shared by
// every subscriber and is never copied.
//
// The subscriber list of a topic is copy-on-write, so Publish takes no lock:
// the fan-out path is one atomic load and one non-blocking channel send per
// subscriber. A subscriber may also offer a Direct hand-over, tried before
// its queue while nothing is queued: a consumer that can take a message at
// once without blocking (a non-blocking socket write, say) then costs the
// publisher no channel operation and itself no goroutine wake-up.
//
// A topic may have a Keeper, which keeps part of its past (a stream's latest
// keyframe onwards) for subscribers that join later: such a subscriber gets
// what the Keeper held when it joined, then everything published after,
// each message once.
package hub

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Message is one unit of a topic. Nothing may modify it, nor the arrays its
// slices point to, after it is published: all subscribers share it.
type Message struct {
	// Data is the payload.
	Data []byte
	// Text marks a text message (websocket semantics); binary otherwise.
	Text bool
	// From is the ID of the publisher. A subscriber whose ID equals From does
	// not receive the message, so a bidirectional client never hears itself.
	// Zero means anonymous.
	From uint64
	// Header is optional transport framing (a websocket frame header, say)
	// that a publisher prepares once so that every subscriber can write
	// Header then Data without framing the message again.
	Header []byte
	// At is when the message came in, in nanoseconds on a monotonic clock
	// its publisher chooses (the relay: since it started); zero if
	// unknown. A subscriber that knows the clock can tell how long a
	// message has waited for it.
	At int64
}

// Policy says what happens when a subscriber's queue is full.
type Policy int

const (
	// Drop loses the new message for that subscriber and counts it.
	Drop Policy = iota
	// Kick ends the subscription: Done is closed, and the subscriber is
	// removed from the topic. Use it where a gap would corrupt the consumer
	// and a reconnect is the better remedy (a browser viewer).
	Kick
)

// SubConfig shapes a subscription.
type SubConfig struct {
	// ID identifies the subscriber; messages with From == ID are skipped.
	// Zero asks the hub for a fresh one.
	ID uint64
	// Queue is the queue length in messages; zero or less means
	// DefaultQueue (every config users set refuses a negative).
	Queue int
	// Policy applies when the queue is full.
	Policy Policy
	// Direct, when set, is offered each message first, in the publisher's
	// goroutine, as long as every message queued before has been marked
	// Consumed: so a message handed over directly never overtakes a queued
	// one from the same publisher. Direct must not block; it reports
	// whether it took the message, and one it does not take is queued as
	// usual. A subscriber with Direct must call Consumed for every message
	// it has received from C and handled.
	Direct func(*Message) bool
	// OnKick, when set, is called once if the hub kicks the subscriber,
	// after Done is closed, in the publisher's goroutine: so the consumer
	// can count and close a viewer that fell behind at once, even while its
	// own goroutine is stuck in a write. It must not block. Close does not
	// call it.
	OnKick func()
	// Replay asks for what the topic's Keeper holds, if it has one: the
	// subscriber finds it in Sub.Replay, to handle before anything from C.
	Replay bool
}

// Keeper keeps part of a topic's past for subscribers that join later. The
// hub serialises Keep with Replay and with the subscriptions that ask for
// one, so that such a subscriber gets every message exactly once: in its
// replay if it was kept before the subscriber joined, in its queue if not.
type Keeper interface {
	// Keep is given every message published to the topic, in order, before
	// any subscriber gets it. It runs in the publisher's goroutine, holding
	// up the topic's other publishers and new subscribers: it must be quick
	// and must not block.
	Keep(*Message)
	// Replay appends to dst what a subscriber joining now gets first.
	Replay(dst []*Message) []*Message
}

// A Keeper with a Close method has it called when its topic goes away (the
// last Leave), to let go of what it keeps.

// DefaultQueue is the queue length used when SubConfig.Queue is zero.
const DefaultQueue = 256

// Hub is a set of topics, created on first use and removed when the last
// publisher or subscriber leaves.
type Hub struct {
	mu       sync.Mutex
	topics   map[string]*Topic
	keepWith func(topic string) Keeper // guarded by mu
	nextID   atomic.Uint64
}

// New returns an empty hub.
func New() *Hub {
	return &Hub{topics: make(map[string]*Topic)}
}

// KeepWith has every topic created from now on ask keeper for its Keeper;
// keeper returns nil for a topic that keeps nothing. Topics that exist
// already are not changed, so set it before any is created.
func (h *Hub) KeepWith(keeper func(topic string) Keeper) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keepWith = keeper
}

// NewID returns an ID unique within this hub, for Message.From and
// SubConfig.ID.
func (h *Hub) NewID() uint64 {
	return h.nextID.Add(1)
}

// Join returns the named topic, creating it if needed, and holds it open
// until the matching Leave. Publishers join; Subscribe joins on its own.
func (h *Hub) Join(name string) *Topic {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil {
		t = &Topic{name: name, hub: h, since: time.Now()}
		t.now = func() time.Duration { return time.Since(t.since) }
		t.subs.Store(&[]*Sub{})
		if h.keepWith != nil {
			t.keeper = h.keepWith(name)
		}
		h.topics[name] = t
	}
	t.mu.Lock()
	t.refs++
	t.mu.Unlock()
	return t
}

// Publish sends m to the named topic's subscribers, if the topic exists.
// Publishers that send often should Join once and use Topic.Publish.
func (h *Hub) Publish(name string, m *Message) {
	h.mu.Lock()
	t := h.topics[name]
	h.mu.Unlock()
	if t != nil {
		t.Publish(m)
	}
}

// Subscribe joins the named topic and subscribes to it. Close the returned
// Sub to leave.
func (h *Hub) Subscribe(name string, cfg SubConfig) *Sub {
	return h.Join(name).subscribe(cfg)
}

// Stats returns a snapshot of every topic, sorted by name.
func (h *Hub) Stats() []TopicStats {
	h.mu.Lock()
	ts := make([]*Topic, 0, len(h.topics))
	for _, t := range h.topics {
		ts = append(ts, t)
	}
	h.mu.Unlock()
	out := make([]TopicStats, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Topics returns how many topics are open; useful for leak checks.
func (h *Hub) Topics() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.topics)
}

// Topic is one named flow of messages.
type Topic struct {
	name  string
	hub   *Hub
	since time.Time

	mu   sync.Mutex             // guards refs and writes to subs
	refs int                    // joins, including one per subscription
	subs atomic.Pointer[[]*Sub] // copy-on-write; read without a lock

	// keeper, set when the topic is created, sees every message before
	// its subscribers; keepMu makes each Keep and the subscriber list it
	// fans out to one step, and each replay and its subscription another.
	keeper Keeper
	keepMu sync.Mutex

	// now is the monotonic time since the topic began; tests replace it.
	now func() time.Duration
	// Direct hand-overs cost the publisher time, paid back at DirectShare
	// of the time that passes: directDebt is what is owed as of
	// directLast (both durations since the topic began).
	directDebt, directLast atomic.Int64

	msgsIn, bytesIn   atomic.Uint64
	msgsOut, bytesOut atomic.Uint64
	dropped, kicked   atomic.Uint64
}

// Name returns the topic's name.
func (t *Topic) Name() string { return t.name }

// Leave releases a Join. The topic disappears from the hub when nothing holds
// it; a later Join creates it afresh with zeroed counters.
func (t *Topic) Leave() {
	t.hub.mu.Lock()
	t.mu.Lock()
	t.refs--
	gone := t.refs == 0
	t.mu.Unlock()
	if gone && t.hub.topics[t.name] == t {
		delete(t.hub.topics, t.name)
	}
	t.hub.mu.Unlock()
	if c, ok := t.keeper.(interface{ Close() }); ok && gone {
		c.Close()
	}
}

// Direct hand-overs are done in the publisher's goroutine, one subscriber
// after another, while queued messages spread over the subscribers' own
// goroutines, and batch up when they come fast. So Direct is for a
// publisher with time to spare: one Publish spends at most DirectBudget on
// it, and a topic's publishers at most DirectShare of their time (a
// Publish after one that overran waits for the debt to be paid back).
// Subscribers not reached within that get the message queued, as without
// Direct.
const (
	DirectBudget = 5 * time.Millisecond
	DirectShare  = 0.5
)

// Publish offers m to every subscriber except the one whose ID is m.From. It
// never blocks.
func (t *Topic) Publish(m *Message) {
	n := uint64(len(m.Data))
	t.msgsIn.Add(1)
	t.bytesIn.Add(n)
	var sent uint64
	var start, budget, debt time.Duration // set at the first Direct offer
	began, over := false, false
	for _, s := range t.keep(m) {
		if s.id == m.From {
			continue
		}
		if s.direct != nil {
			if !over && s.queued.Load() == 0 {
				if !began {
					began = true
					start, debt = t.settleDirect()
					budget = DirectBudget - debt
				}
				over = t.now()-start >= budget
				if !over && s.direct(m) {
					sent++
					continue
				}
			}
			// Counted before the send, so that the consumer, which marks
			// it consumed after receiving it, never sees the count low.
			s.queued.Add(1)
		}
		select {
		case s.c <- m:
			sent++
		default:
			if s.direct != nil {
				s.queued.Add(-1)
			}
			s.dropped.Add(1)
			t.dropped.Add(1)
			if s.policy == Kick {
				s.kick()
			}
		}
	}
	if began {
		t.directDebt.Store(int64(debt + t.now() - start))
	}
	if sent > 0 {
		t.msgsOut.Add(sent)
		t.bytesOut.Add(sent * n)
	}
}

// keep gives m to the topic's Keeper, if any, and returns the subscribers
// to offer m to: those that had joined when it was kept, so that any
// subscriber that joins later has m in its replay instead.
func (t *Topic) keep(m *Message) []*Sub {
	if t.keeper == nil {
		return *t.subs.Load()
	}
	t.keepMu.Lock()
	defer t.keepMu.Unlock()
	t.keeper.Keep(m)
	return *t.subs.Load()
}

// Keeper returns the topic's Keeper, or nil.
func (t *Topic) Keeper() Keeper { return t.keeper }

// settleDirect pays back the Direct debt for the time passed since it was
// last settled, and returns now and what is still owed. Publishers racing
// here may lose each other's updates: the share is a bound on a heuristic,
// not an account.
func (t *Topic) settleDirect() (now, debt time.Duration) {
	now = t.now()
	last := time.Duration(t.directLast.Swap(int64(now)))
	paid := time.Duration(float64(now-last) * DirectShare)
	return now, max(time.Duration(t.directDebt.Load())-paid, 0)
}

// Subscribers returns how many subscribers the topic has now.
func (t *Topic) Subscribers() int { return len(*t.subs.Load()) }

func (t *Topic) subscribe(cfg SubConfig) *Sub {
	q := cfg.Queue
	if q <= 0 {
		q = DefaultQueue
	}
	id := cfg.ID
	if id == 0 {
		id = t.hub.NewID()
	}
	s := &Sub{t: t, id: id, policy: cfg.Policy, direct: cfg.Direct, onKick: cfg.OnKick, c: make(chan *Message, q), done: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	if cfg.Replay && t.keeper != nil {
		t.keepMu.Lock()
		defer t.keepMu.Unlock()
		s.replay = t.keeper.Replay(nil)
	}
	old := *t.subs.Load()
	next := make([]*Sub, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	t.subs.Store(&next)
	return s
}

// remove takes s out of the subscriber list; it reports whether s was there.
func (t *Topic) remove(s *Sub) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.subs.Load()
	for i, x := range old {
		if x == s {
			next := make([]*Sub, 0, len(old)-1)
			next = append(next, old[:i]...)
			next = append(next, old[i+1:]...)
			t.subs.Store(&next)
			return true
		}
	}
	return false
}

// TopicStats is a snapshot of a topic's counters.
type TopicStats struct {
	Name        string    `json:"name"`
	Subscribers int       `json:"subscribers"`
	Publishers  int       `json:"publishers"`
	MsgsIn      uint64    `json:"msgsIn"`
	BytesIn     uint64    `json:"bytesIn"`
	MsgsOut     uint64    `json:"msgsOut"`
	BytesOut    uint64    `json:"bytesOut"`
	Dropped     uint64    `json:"dropped"`
	Kicked      uint64    `json:"kicked"`
	Since       time.Time `json:"since"`
}

// Stats returns a snapshot of the topic's counters.
func (t *Topic) Stats() TopicStats {
	t.mu.Lock()
	refs := t.refs
	t.mu.Unlock()
	subs := len(*t.subs.Load())
	return TopicStats{
		Name:        t.name,
		Subscribers: subs,
		Publishers:  max(refs-subs, 0),
		MsgsIn:      t.msgsIn.Load(),
		BytesIn:     t.bytesIn.Load(),
		MsgsOut:     t.msgsOut.Load(),
		BytesOut:    t.bytesOut.Load(),
		Dropped:     t.dropped.Load(),
		Kicked:      t.kicked.Load(),
		Since:       t.since,
	}
}

// Sub is one subscription. Read messages from C until Done is closed.
type Sub struct {
	t      *Topic
	id     uint64
	policy Policy
	direct func(*Message) bool
	onKick func()
	c      chan *Message // never closed, so a racing Publish cannot panic
	replay []*Message    // what the Keeper held at subscription, until taken
	// queued counts the messages queued and not yet marked Consumed, kept
	// only for a subscriber with Direct.
	queued atomic.Int64

	done      chan struct{}
	closeOnce sync.Once
	kicked    atomic.Bool
	dropped   atomic.Uint64
}

// C returns the queue of messages.
func (s *Sub) C() <-chan *Message { return s.c }

// Replay returns, the first time it is called, the messages the topic's
// Keeper held when the subscription began (with SubConfig.Replay): they
// come before anything from C, and none of them is also in C. Later calls
// return nil. Call it from the goroutine that reads C.
func (s *Sub) Replay() []*Message {
	r := s.replay
	s.replay = nil
	return r
}

// Done is closed when the subscription ends, by Close or by a kick.
func (s *Sub) Done() <-chan struct{} { return s.done }

// ID is the subscriber's identity, to use as Message.From when it publishes
// into the same topic.
func (s *Sub) ID() uint64 { return s.id }

// Topic returns the topic subscribed to.
func (s *Sub) Topic() *Topic { return s.t }

// Consumed marks n messages received from C as handled, so that Direct may
// be offered messages again once none is outstanding. Only a subscriber with
// Direct needs it; for others it does nothing.
func (s *Sub) Consumed(n int) {
	if s.direct != nil {
		s.queued.Add(-int64(n))
	}
}

// Kicked reports whether the hub ended the subscription for falling behind.
func (s *Sub) Kicked() bool { return s.kicked.Load() }

// Dropped returns how many messages this subscriber lost to a full queue.
func (s *Sub) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and leaves the topic. It is idempotent and safe
// to call from any goroutine.
func (s *Sub) Close() {
	s.end(false)
}

func (s *Sub) kick() {
	s.end(true)
}

func (s *Sub) end(kicked bool) {
	s.closeOnce.Do(func() {
		if kicked {
			s.kicked.Store(true)
			s.t.kicked.Add(1)
		}
		s.t.remove(s)
		close(s.done)
		s.t.Leave()
		if kicked && s.onKick != nil {
			s.onKick()
		}
	})
}
