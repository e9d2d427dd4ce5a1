// Package rwc owns destination rules: for each rule one reconnecting
// websocket client pushes one stream's topic to a remote URL, optionally
// recording the same bytes to a file, and publishes what the remote sends
// back into the topic. Updating a rule swaps make-before-break.
//
// Every destination is one goroutine (its pump) that owns its hub
// subscription, its clients and its recording file; the RWC only holds the
// rules and tells pumps what is wanted, so no method waits on the network.
package rwc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/defaults"
	"github.com/vwlab/vw/reconws"
)

// Rule is one destination rule. Field order is the wire order.
type Rule struct {
	Stream      string `json:"stream"`
	Destination string `json:"destination"`
	ID          string `json:"id"`
	Token       string `json:"token,omitempty"`
	File        string `json:"file,omitempty"`
	// MaxDelay bounds how far behind live this destination may fall
	// before it sheds video (a duration, "500ms"; "off" never sheds);
	// empty means Config.MaxDelay.
	MaxDelay string `json:"max_delay,omitempty"`
}

// ErrInvalid wraps every error that is the rule's fault (a bad URL, a file
// outside the recordings folder); the API answers those with 400.
var ErrInvalid = errors.New("invalid destination rule")

// ErrClosed is returned by Set after Close.
var ErrClosed = errors.New("destinations are shut down")

// Defaults for the zero fields of Config.
const (
	DefaultRecordings    = "./recordings"
	DefaultSwapTimeout   = 10 * time.Second
	DefaultFlushInterval = 500 * time.Millisecond
	DefaultMaxDelay      = time.Second
)

// Config holds what every destination shares. Zero fields take defaults;
// negative ones are an error.
type Config struct {
	// Recordings is the folder that Rule.File names are relative to;
	// created when a rule first records. Default ./recordings.
	Recordings string
	// Resolve maps a rule's stream name to the hub topic to push: the
	// stream rule's topic if one exists, otherwise the feed's. Nil means
	// the stream name is the topic.
	Resolve func(stream string) string

	// TLS configures wss:// destinations, e.g. RootCAs with a lab's own CA
	// added to the system pool. Certificates are always verified.
	TLS *tls.Config
	// Queue is each destination's queue length in messages, both its hub
	// subscription and its client's send queue. Default 256.
	Queue int
	// DialTimeout, BackoffMin, BackoffMax, PingInterval and CloseTimeout
	// shape every client; see reconws.Config.
	DialTimeout, BackoffMin, BackoffMax, PingInterval, CloseTimeout time.Duration
	// SwapTimeout bounds make-before-break: if a rule's new URL has not
	// connected by then, the old connection is closed anyway (and the new
	// one keeps trying), so a typo does not keep feeding the old place.
	SwapTimeout time.Duration
	// FlushInterval is how often recordings are flushed to disk.
	FlushInterval time.Duration
	// MaxDelay is how far behind live a destination may fall before it
	// sheds video, unless its rule says otherwise; negative never sheds.
	// Default 1 s.
	MaxDelay time.Duration
}

// RWC holds the destination rules and their clients.
type RWC struct {
	cfg    Config
	h      *hub.Hub
	log    *logrus.Entry
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per pump

	mu      sync.Mutex
	rules   map[string]Rule
	dests   map[string]*dest
	recErrs map[string]string // why a rule's recording could not be opened
	closed  bool
}

func (c Config) withDefaults() (Config, error) {
	defaults.Zero(&c.Recordings, DefaultRecordings)
	if c.Resolve == nil {
		c.Resolve = func(s string) string { return s }
	}
	err := errors.Join(
		defaults.Positive("Queue", &c.Queue, hub.DefaultQueue),
		defaults.Positive("SwapTimeout", &c.SwapTimeout, DefaultSwapTimeout),
		defaults.Positive("FlushInterval", &c.FlushInterval, DefaultFlushInterval),
		// Zero stays zero here: the client takes its own default.
		defaults.Positive("DialTimeout", &c.DialTimeout, 0),
		defaults.Positive("BackoffMin", &c.BackoffMin, 0),
		defaults.Positive("BackoffMax", &c.BackoffMax, 0),
		defaults.Positive("PingInterval", &c.PingInterval, 0),
		defaults.Positive("CloseTimeout", &c.CloseTimeout, 0),
	)
	return c, err
}

// New returns an RWC with no rules.
func New(cfg Config, h *hub.Hub, log *logrus.Entry) (*RWC, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("rwc: %w", err)
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &RWC{
		cfg: cfg, h: h, log: log, ctx: ctx, cancel: cancel,
		rules:   make(map[string]Rule),
		dests:   make(map[string]*dest),
		recErrs: make(map[string]string),
	}, nil
}

// Validate reports whether rwc can run rule's destination and recording, a
// refusal wrapping ErrInvalid: a ws:// or wss:// URL with a host and no
// credentials, a file name that stays inside the recordings folder. Ids and
// stream names are the caller's (package rules validates the whole rule and
// calls this for these fields); Set checks this part again, so that a rule
// rwc cannot run is never stored.
func Validate(rule Rule) error {
	if hasUserinfo(rule.Destination) {
		// Never echoed: the part before @ is likely a password.
		return fmt.Errorf("%w: destination %q has a user name or password in it, which websocket URLs cannot carry: send a \"token\" instead", ErrInvalid, redactURL(rule.Destination))
	}
	if err := reconws.CheckURL(rule.Destination); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if rule.File != "" {
		if err := checkFile(rule.File); err != nil {
			return err
		}
	}
	if rule.MaxDelay != "" && rule.MaxDelay != "off" {
		if d, err := time.ParseDuration(rule.MaxDelay); err != nil || d <= 0 {
			return fmt.Errorf("%w: max_delay %q is not a positive duration (like \"500ms\") or \"off\"", ErrInvalid, rule.MaxDelay)
		}
	}
	return nil
}

// maxDelay is the delay bound in force for rule: 0 never sheds.
func maxDelay(rule Rule, def time.Duration) time.Duration {
	switch rule.MaxDelay {
	case "":
		return max(0, def)
	case "off":
		return 0
	}
	d, _ := time.ParseDuration(rule.MaxDelay) // Validate checked it
	return d
}

// checkFile accepts only a relative name that stays inside the recordings
// folder, lexically; os.Root then refuses symlinks that lead out.
func checkFile(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: file %q %s", ErrInvalid, name, why)
	}
	switch {
	case strings.ContainsRune(name, 0):
		return bad("contains a NUL byte")
	case filepath.IsAbs(name) || strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`):
		return bad("must be a name relative to the recordings folder, not an absolute path")
	case slices.Contains(strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }), ".."):
		return bad("must not contain \"..\"")
	case !filepath.IsLocal(name):
		return bad("must stay inside the recordings folder")
	case filepath.Clean(name) == "." || strings.HasSuffix(name, "/"):
		return bad("names a folder, not a file")
	}
	return nil
}

// Set validates rule and creates or replaces the destination with its ID.
// A new URL or token is swapped in make-before-break; a new stream moves the
// subscription without reconnecting; the same rule again changes nothing.
// Set never waits on the network; it opens the recording file, so that a
// file that cannot be written is reported here.
func (r *RWC) Set(rule Rule) error { return r.set(rule, false) }

// Restore is Set for a rule saved before a restart: if its recording cannot
// be opened now, the rule is installed all the same, without recording, so
// that its stream still flows; RecordingError says why, and the log.
func (r *RWC) Restore(rule Rule) error { return r.set(rule, true) }

func (r *RWC) set(rule Rule, lenient bool) error {
	if err := Validate(rule); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	old, exists := r.rules[rule.ID]
	_, failed := r.recErrs[rule.ID]
	if exists && old == rule && !failed {
		return nil
	}
	var f *os.File
	reopen := rule.File != "" && (!exists || failed || filepath.Clean(old.File) != filepath.Clean(rule.File))
	if reopen {
		for id, o := range r.rules {
			if id != rule.ID && o.File != "" && filepath.Clean(o.File) == filepath.Clean(rule.File) {
				return fmt.Errorf("%w: file %q is already recorded by destination %q", ErrInvalid, rule.File, id)
			}
		}
		var err error
		if f, err = r.openRecording(rule.File); err != nil && !lenient {
			return err
		} else if err != nil {
			r.recErrs[rule.ID] = err.Error()
			r.log.WithFields(logrus.Fields{"id": rule.ID, "file": rule.File, "err": err}).Error("recording cannot be opened: the rule is restored without it")
		}
	}
	if f != nil || rule.File == "" {
		delete(r.recErrs, rule.ID)
	}
	if !exists || old.Destination != rule.Destination || old.Token != rule.Token {
		r.warnPlainToken(rule)
	}
	topic := r.cfg.Resolve(rule.Stream)
	if d := r.dests[rule.ID]; d != nil {
		d.update(rule, topic, f)
	} else {
		r.dests[rule.ID] = r.start(rule, topic, f)
	}
	r.rules[rule.ID] = rule
	return nil
}

// RecordingError says why destination id's recording is not being made,
// or "" if it is (or the rule has no file).
func (r *RWC) RecordingError(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recErrs[id]
}

// Get returns the rule with id, and whether it exists.
func (r *RWC) Get(id string) (Rule, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rule, ok := r.rules[id]
	return rule, ok
}

// All returns a copy of every rule, by ID.
func (r *RWC) All() map[string]Rule {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.rules)
}

// Connected reports whether destination id has a connection up that
// receives its stream.
func (r *RWC) Connected(id string) bool {
	s, ok := r.Stats(id)
	return ok && s.Connected
}

// Stats describes one destination's current client and its shedding.
type Stats struct {
	URL       string `json:"url"`
	Connected bool   `json:"connected"`
	reconws.Stats
	Shed ShedStats `json:"shed"`
}

// ShedStats say how a destination keeps live on a slow link.
type ShedStats struct {
	// Shedding: video is being dropped now.
	Shedding bool `json:"shedding"`
	// Behind is how long the connection needs to deliver what it holds,
	// as of the latest message.
	Behind time.Duration `json:"behindNs"`
	// SkippedGOPs counts GOPs some or all of whose pictures were dropped;
	// SkippedBytes the bytes dropped.
	SkippedGOPs  uint64 `json:"skippedGops"`
	SkippedBytes uint64 `json:"skippedBytes"`
	// SkippedAudio counts audio PES dropped because the link could not
	// carry even the audio within the bound.
	SkippedAudio uint64 `json:"skippedAudio"`
}

// Stats returns the state of destination id's current client (during a swap,
// the old one until the new one takes over), and whether id exists.
func (r *RWC) Stats(id string) (Stats, bool) {
	r.mu.Lock()
	d := r.dests[id]
	r.mu.Unlock()
	if d == nil {
		return Stats{}, false
	}
	shed := ShedStats{
		Shedding: d.shedding.Load(), Behind: time.Duration(d.behind.Load()),
		SkippedGOPs: d.skippedGOPs.Load(), SkippedBytes: d.skippedBytes.Load(),
		SkippedAudio: d.skippedAudio.Load(),
	}
	c := d.client.Load()
	if c == nil {
		return Stats{Shed: shed}, true
	}
	return Stats{URL: c.URL(), Connected: c.Connected(), Stats: c.Stats(), Shed: shed}, true
}

// Delete stops and removes the destination with id; it reports whether
// there was one. When it returns the recording is flushed and closed; the
// client's close handshake finishes in the background (Close waits for it).
func (r *RWC) Delete(id string) bool {
	r.mu.Lock()
	d := r.dests[id]
	delete(r.dests, id)
	delete(r.rules, id)
	delete(r.recErrs, id)
	r.mu.Unlock()
	if d == nil {
		return false
	}
	d.halt()
	return true
}

// DeleteAll stops and removes every destination except those whose IDs are
// listed in keep.
func (r *RWC) DeleteAll(keep ...string) {
	r.mu.Lock()
	var gone []*dest
	for id, d := range r.dests {
		if !slices.Contains(keep, id) {
			gone = append(gone, d)
			delete(r.dests, id)
			delete(r.rules, id)
			delete(r.recErrs, id)
		}
	}
	r.mu.Unlock()
	halt(gone)
}

// Refresh re-resolves every destination's topic, after stream rules change;
// a destination whose topic changed subscribes to the new one before leaving
// the old, without reconnecting.
func (r *RWC) Refresh() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, d := range r.dests {
		rule := r.rules[id]
		d.update(rule, r.cfg.Resolve(rule.Stream), nil)
	}
}

// Close stops every destination: websocket close frames sent, files flushed
// and closed. It waits for them, each within its close timeout. Rules stay
// readable; Set fails from now on.
func (r *RWC) Close() {
	r.mu.Lock()
	r.closed = true
	all := slices.Collect(maps.Values(r.dests))
	clear(r.dests)
	r.mu.Unlock()
	halt(all)
	r.wg.Wait()
	r.cancel()
}

func halt(ds []*dest) {
	for _, d := range ds {
		d.signalStop()
	}
	for _, d := range ds {
		<-d.stopped
	}
}
