// Package agg owns stream rules (a stream is a list of feeds) and the MPEG-TS
// muxer that turns a stream's feeds into one valid transport stream. Each
// stream rule runs one muxer goroutine, which subscribes to its feeds' topics
// and publishes the muxed stream to the stream's topic; changing a rule
// re-plumbs it live, at PES boundaries, without touching the feeds.
//
// The muxer gives every elementary stream of every feed its own output PID,
// drops the feeds' PSI and writes one PAT and PMT of its own, owns the
// continuity counters, rebases every feed's timestamps onto one stream
// clock, and drops a feed that has gone silent from the PMT until it returns.
// It keeps a stream to one codec family, leaving out a feed that does not
// fit (codec.go), and in an H.264 stream it keeps a muted AAC track alive
// with silence, since browsers' decoders freeze the picture without it
// (silence.go).
package agg

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/defaults"
)

// FeedTopic is the hub topic that a feed's ingest publishes whole, aligned
// MPEG-TS packets to. Each message's From identifies the ingest connection,
// so a change of From means the feed's ffmpeg restarted.
func FeedTopic(feed string) string { return "feed/" + feed }

// StreamTopic is the hub topic a stream rule's muxed output is published to.
func StreamTopic(stream string) string { return "stream/" + stream }

// Config tunes the muxers. Zero fields take the defaults of DefaultConfig;
// negative ones are an error.
type Config struct {
	// Grace is how long a feed may be silent before it leaves the PMT.
	Grace time.Duration
	// DrainMax bounds how long a removed feed may take to finish its
	// current PES; after it the cut is made wherever the feed is.
	DrainMax time.Duration
	// PSIInterval is the PAT/PMT repetition period while data flows.
	PSIInterval time.Duration
	// Resync is how far a feed's clock may stray from the stream clock
	// before its offset is learned again.
	Resync time.Duration
	// KeyframeWait is how long a video stream joining the stream waits for
	// a PES flagged random access before it joins at any PES start.
	KeyframeWait time.Duration
	// Queue is the queue length, in messages, of each feed subscription.
	Queue int
}

// DefaultConfig returns the configuration New uses.
func DefaultConfig() Config {
	return Config{
		Grace:        2 * time.Second,
		DrainMax:     250 * time.Millisecond,
		PSIInterval:  100 * time.Millisecond,
		Resync:       time.Second,
		KeyframeWait: time.Second,
		Queue:        1024,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	err := errors.Join(
		defaults.Positive("Grace", &c.Grace, d.Grace),
		defaults.Positive("DrainMax", &c.DrainMax, d.DrainMax),
		defaults.Positive("PSIInterval", &c.PSIInterval, d.PSIInterval),
		defaults.Positive("Resync", &c.Resync, d.Resync),
		defaults.Positive("KeyframeWait", &c.KeyframeWait, d.KeyframeWait),
		defaults.Positive("Queue", &c.Queue, d.Queue),
	)
	return c, err
}

// ErrClosed is returned by Set after Close.
var ErrClosed = errors.New("agg: closed")

// Agg holds the stream rules and runs one muxer per rule.
type Agg struct {
	cfg Config
	h   *hub.Hub
	log *logrus.Entry

	codecs feedCodecs // what each connected feed carries (codec.go)

	mu      sync.Mutex
	rules   map[string][]string
	streams map[string]*stream
	closed  bool
}

// New returns an Agg with no rules.
func New(cfg Config, h *hub.Hub, log *logrus.Entry) (*Agg, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("agg: %w", err)
	}
	return &Agg{
		cfg:     cfg,
		h:       h,
		log:     log,
		rules:   make(map[string][]string),
		streams: make(map[string]*stream),
	}, nil
}

// Set creates or replaces the rule for stream. When it returns the rule is
// in force: no packet of a feed no longer listed leaves the muxer after
// that (a removed feed first finishes the PES it is in, for at most
// Config.DrainMax), and packets a new feed publishes from then on are muxed
// from its next PES start. Feeds whose known codecs cannot form one stream
// are refused with ErrCodecMix, and nothing is stored. If ctx ends first,
// Set returns its error with the rule stored and the change still under way.
func (a *Agg) Set(ctx context.Context, name string, feeds []string) error {
	feeds = slices.Clone(feeds)
	if err := a.codecs.check(feeds); err != nil {
		return err
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	s := a.streams[name]
	if s == nil {
		s = a.start(name)
		a.streams[name] = s
	} else if !sameFeeds(a.rules[name], feeds) {
		s.counts.muteChanges.Add(1)
	}
	a.rules[name] = feeds
	req := change{feeds: feeds, done: make(chan struct{})}
	// Sent under the lock so that concurrent Sets of one stream reach its
	// muxer in the order they were stored.
	select {
	case s.ctl <- req:
	case <-s.done:
		a.mu.Unlock()
		return ErrClosed
	}
	a.mu.Unlock()
	select {
	case <-req.done:
		return nil
	case <-s.done:
		return nil // deleted meanwhile: nothing of it leaves any more
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Get returns the feeds of stream, and whether the rule exists.
func (a *Agg) Get(stream string) ([]string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, ok := a.rules[stream]
	return slices.Clone(f), ok
}

// All returns a copy of every rule.
func (a *Agg) All() map[string][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := maps.Clone(a.rules)
	for k, v := range out {
		out[k] = slices.Clone(v)
	}
	return out
}

// Delete removes the rule for stream, stops its muxer, and reports whether
// there was one. When it returns nothing more is published to the stream.
func (a *Agg) Delete(stream string) bool {
	a.mu.Lock()
	_, ok := a.rules[stream]
	s := a.streams[stream]
	delete(a.rules, stream)
	delete(a.streams, stream)
	a.mu.Unlock()
	if s != nil {
		s.stop()
	}
	return ok
}

// DeleteAll removes every rule.
func (a *Agg) DeleteAll() {
	a.mu.Lock()
	ss := slices.Collect(maps.Values(a.streams))
	clear(a.rules)
	clear(a.streams)
	a.mu.Unlock()
	for _, s := range ss {
		s.stop()
	}
}

// Close stops every muxer and waits for them. The Agg is unusable after.
func (a *Agg) Close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.DeleteAll()
}

// start launches the muxer goroutine of a new stream.
func (a *Agg) start(name string) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{
		name:   name,
		h:      a.h,
		cfg:    a.cfg,
		log:    a.log.WithField("stream", name),
		ctl:    make(chan change),
		in:     make(chan input, 64),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go s.run(ctx)
	return s
}
