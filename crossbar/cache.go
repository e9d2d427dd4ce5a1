package crossbar

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/ts"
)

// A viewer that joins a stream mid-GOP sees nothing until the next
// keyframe: jsmpeg starts decoding only at a sequence header, which ffmpeg
// writes once per GOP (every 4 s at -g 100). So every stream topic keeps a
// keyframe cache, the hub.Keeper of its topic: the latest PAT and PMT, and
// the messages published since the start of the latest keyframe's PES. A
// viewer joining gets those first, then the live stream, each message once
// (the hub sees to the seam), and its player has a picture at once.
//
// The cache holds the published messages themselves, not copies; only
// where a keyframe starts inside a message is a new hub.Message made, on
// the same bytes. It is bounded per topic and across topics: a GOP that
// outgrows either is dropped whole (never cut at the front, which would
// leave a viewer a stream without its keyframe) and the cache keeps only
// the PAT/PMT until the next keyframe. A new PMT version (a feed muted or
// added) or a new publisher (a destination swapped) changes what follows,
// so the cache restarts at the next keyframe then too.

// DefaultCacheBytes is Config.CacheBytes's default: a 4 s GOP at 8 Mbit/s.
const DefaultCacheBytes = 4 << 20

// cacheBudget is what the keyframe caches of one relay may hold together.
type cacheBudget struct {
	perTopic, total int64
	used            atomic.Int64
}

// KeyframeCaches returns a function for hub.Hub.KeepWith that gives a
// keyframe cache to every topic whose name match accepts (nil: every
// topic), each holding at most perTopic bytes and all of them together at
// most total; zero picks DefaultCacheBytes and 64 × perTopic. A negative
// perTopic keeps only the PAT and PMT. vw relay gives one to each /out/
// topic; vw stream to its streams and feeds, for the local preview.
func KeyframeCaches(perTopic, total int64, match func(topic string) bool) func(topic string) hub.Keeper {
	return newCacheBudget(perTopic, total).keepers(match)
}

// keepers returns the hub.Hub.KeepWith function of KeyframeCaches for b.
func (b *cacheBudget) keepers(match func(topic string) bool) func(topic string) hub.Keeper {
	return func(topic string) hub.Keeper {
		if match != nil && !match(topic) {
			return nil
		}
		return newKeyframeCache(b, time.Now)
	}
}

func newCacheBudget(perTopic, total int64) *cacheBudget {
	switch {
	case perTopic == 0:
		perTopic = DefaultCacheBytes
	case perTopic < 0:
		perTopic = 0
	}
	if total <= 0 {
		total = 64 * perTopic
	}
	return &cacheBudget{perTopic: perTopic, total: total}
}

// isStreamTopic reports whether a relay topic carries a stream (/out/{x}).
func isStreamTopic(topic string) bool { return strings.HasPrefix(topic, "/out/") }

// kept is a message held by the cache and where its first byte lies in the
// topic's byte stream.
type kept struct {
	m  *hub.Message
	at uint64
}

// keyframeCache is a stream topic's hub.Keeper. Keep and Replay run under
// the hub's lock for the topic; mu is for the relay's other calls (stats,
// reset).
type keyframeCache struct {
	budget *cacheBudget
	now    func() time.Time
	psi    psiCache

	mu sync.Mutex
	st streamState

	msgs  []kept // from the earliest byte that may still be needed
	bytes int64  // memory of msgs, counted against the budget

	gop    bool         // a GOP is cached: from gopAt to the end
	gopAt  uint64       // where its keyframe's PES starts
	head   *hub.Message // the message holding gopAt, from gopAt on
	keyAt  time.Time    // when its keyframe arrived
	starts uint64       // GOPs started, for tests

	// key is where the newest keyframe starts, kept even when its GOP
	// outgrows the budget: a skipping viewer resumes there.
	key atomic.Pointer[keyMark]
}

func newKeyframeCache(b *cacheBudget, now func() time.Time) *keyframeCache {
	c := &keyframeCache{budget: b, now: now}
	c.st.restart()
	return c
}

// Keep follows the stream through m and keeps m while a GOP needs it.
func (c *keyframeCache) Keep(m *hub.Message) {
	if m.Text {
		return // not part of the stream; nobody joining needs it
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.From != c.st.from {
		// Another publisher: its stream is not this one's continuation.
		c.restart()
		c.st.from = m.From
	}
	at := c.st.fed
	c.st.fed += uint64(len(m.Data))
	c.msgs = append(c.msgs, kept{m: m, at: at})
	c.charge(memOf(m))
	pkts, base, exact := c.st.packets(m.Data, at)
	c.psi.observe(pkts)
	for i := 0; i+ts.PacketSize <= len(pkts); i += ts.PacketSize {
		switch c.st.packet(pkts[i:i+ts.PacketSize], base+uint64(i), exact) {
		case newTables:
			c.dropGOP()
		case keyframe:
			c.startGOP(c.st.pesAt)
		}
	}
	c.trim()
}

// Replay appends the PAT/PMT message and the cached GOP.
func (c *keyframeCache) Replay(dst []*hub.Message) []*hub.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if psi := c.psi.message(); psi != nil {
		dst = append(dst, psi)
	}
	if c.gop {
		dst = append(dst, c.head)
		for _, k := range c.msgs[1:] {
			dst = append(dst, k.m)
		}
	}
	return dst
}

// stats returns the memory the cache holds and the age of its keyframe
// (ok false without one).
func (c *keyframeCache) stats() (bytes int64, age time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gop {
		age, ok = c.now().Sub(c.keyAt), true
	}
	return c.bytes, age, ok
}

// Close lets go of everything, when the topic goes away: its bytes no
// longer count against the relay's total.
func (c *keyframeCache) Close() { c.reset() }

// reset forgets everything, when a stream's last publisher leaves.
func (c *keyframeCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.psi.reset()
	c.restart()
	c.st.from = 0
}

// restart drops what the cache holds and what it knows of the stream, for
// a stream that starts afresh. The PAT/PMT stay until new ones come.
func (c *keyframeCache) restart() {
	c.dropGOP()
	c.st.restart()
	c.release(len(c.msgs))
}

// startGOP starts the cache at the keyframe whose PES starts at byte at,
// if the message holding that byte is still kept.
func (c *keyframeCache) startGOP(at uint64) {
	i := len(c.msgs) - 1
	for i >= 0 && c.msgs[i].at > at {
		i--
	}
	if i < 0 || at-c.msgs[i].at >= uint64(len(c.msgs[i].m.Data)) {
		return
	}
	c.release(i)
	k := c.msgs[0]
	c.head = k.m
	if off := at - k.at; off > 0 {
		// The same bytes from the keyframe on: a viewer's first packet is
		// the keyframe's.
		c.head = &hub.Message{Data: k.m.Data[off:], From: k.m.From}
	}
	c.gop, c.gopAt, c.keyAt = true, at, c.now()
	c.starts++
	c.key.Store(&keyMark{m: k.m, off: int(at - k.at)})
}

// dropGOP stops serving the cached GOP; trim lets its messages go.
func (c *keyframeCache) dropGOP() {
	c.gop, c.head = false, nil
}

// trim lets go of the messages nothing needs, then holds the cache to its
// bounds: over them, the GOP goes whole, and then an undecided PES.
func (c *keyframeCache) trim() {
	for {
		from := c.st.neededFrom()
		if c.gop {
			from = min(from, c.gopAt)
		}
		i := 0
		for i < len(c.msgs) && c.msgs[i].at+uint64(len(c.msgs[i].m.Data)) <= from {
			i++
		}
		c.release(i)
		if c.bytes <= c.budget.perTopic && c.budget.used.Load() <= c.budget.total {
			return
		}
		switch {
		case c.gop:
			c.dropGOP()
		case c.st.pending:
			c.st.pending = false
		default:
			return // what is left is the aligner's carry: a packet or three
		}
	}
}

// release lets go of msgs[:n].
func (c *keyframeCache) release(n int) {
	var freed int64
	for _, k := range c.msgs[:n] {
		freed += memOf(k.m)
	}
	clear(c.msgs[:n])
	c.msgs = c.msgs[n:]
	if len(c.msgs) == 0 {
		c.msgs = nil // let the array go too
	}
	c.charge(-freed)
}

func (c *keyframeCache) charge(n int64) {
	c.bytes += n
	c.budget.used.Add(n)
}

// memOf is the memory a message keeps alive: its buffer, frame header
// included, as far as the slices show it.
func memOf(m *hub.Message) int64 {
	return int64(len(m.Header) + cap(m.Data))
}
