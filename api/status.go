package api

import (
	"context"
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/vwlab/vw/agg"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/pagestyle"
	"github.com/vwlab/vw/rwc"
)

// Status is what GET /status answers, and what the page at / shows: vw
// stream's feeds, streams and destinations as they are now.
type Status struct {
	Time         time.Time           `json:"time"`
	Feeds        []FeedStatus        `json:"feeds"`
	Streams      []StreamStatus      `json:"streams"`
	Destinations []DestinationStatus `json:"destinations"`
}

// FeedStatus describes one feed.
type FeedStatus struct {
	Name string `json:"name"`
	// Up is true while ffmpeg's POST is connected.
	Up bool `json:"up"`
	// Tracks are learnt from the feed itself, within a few seconds of the
	// first status asked for after its POST began; empty until then.
	Tracks []Track `json:"tracks"`
	Bytes  uint64  `json:"bytes"`
	// BitRate is in bits per second, between the last two looks at the
	// feed's byte count (at least half a second apart).
	BitRate float64 `json:"bitRate"`
	// LastDataSeconds is how long ago its byte count last grew, as seen by
	// those looks; -1 when not seen grow yet.
	LastDataSeconds float64 `json:"lastDataSeconds"`
}

// StreamStatus describes one stream rule.
type StreamStatus struct {
	Name  string   `json:"name"`
	Feeds []string `json:"feeds"`
	// Muted is true when none of its feeds has an audio track, once each
	// live one has been probed.
	Muted   bool    `json:"muted"`
	Bytes   uint64  `json:"bytes"`
	BitRate float64 `json:"bitRate"`
}

// DestinationStatus describes one destination rule and its connection.
type DestinationStatus struct {
	ID     string `json:"id"`
	Stream string `json:"stream"`
	// URL is the destination without credentials or query.
	URL string `json:"url"`
	// State is connected, backing_off (a dial failed; redialling) or
	// connecting.
	State string `json:"state"`
	// ConnectedSeconds is how long the current connection has been up; 0
	// while there is none.
	ConnectedSeconds float64 `json:"connectedSeconds"`
	Connects         uint64  `json:"connects"`
	Failures         uint64  `json:"failures"`
	BackoffSeconds   float64 `json:"backoffSeconds"`
	Sent             uint64  `json:"sent"`
	// Bytes counts the payload bytes of the messages sent.
	Bytes   uint64 `json:"bytes"`
	Dropped uint64 `json:"dropped"`
	File    string `json:"file,omitempty"`
	// Shed says how the destination keeps live on a slow link.
	Shed rwc.ShedStats `json:"shed"`
}

// probeTimeout bounds one look at a feed for its tracks: a keyframe, which
// carries the video's size, comes at least every few seconds.
const probeTimeout = 5 * time.Second

// statusState is what the status remembers between requests: the last look
// at each topic's byte count, for rates, and what probing each feed found.
type statusState struct {
	s *Server

	mu      sync.Mutex
	samples map[string]*sample   // by hub topic
	probes  map[string]*feedInfo // by feed
}

type sample struct {
	at, grew time.Time
	bytes    uint64
	rate     float64
}

// feedInfo is what probing one POST of a feed found.
type feedInfo struct {
	ingest  uint64 // the POST probed
	tracks  []Track
	running bool
}

func (s *Server) newStatusState() *statusState {
	return &statusState{s: s, samples: map[string]*sample{}, probes: map[string]*feedInfo{}}
}

// look updates a topic's sample and returns its rate and when it last grew.
func (st *statusState) look(topic string, bytes uint64, now time.Time, seen map[string]bool) (float64, time.Time) {
	seen[topic] = true
	sm := st.samples[topic]
	if sm == nil {
		sm = &sample{at: now, bytes: bytes}
		st.samples[topic] = sm
	}
	if dt := now.Sub(sm.at).Seconds(); dt >= 0.5 {
		sm.rate = 0
		if bytes > sm.bytes {
			sm.rate = float64(bytes-sm.bytes) * 8 / dt
			sm.grew = now
		}
		sm.at, sm.bytes = now, bytes
	}
	return sm.rate, sm.grew
}

// status gathers the status, starting a probe of every live feed whose
// POST has not been probed.
func (st *statusState) status() Status {
	s := st.s
	now := time.Now()
	topics := map[string]hub.TopicStats{}
	for _, t := range s.hub.Stats() {
		topics[t.Name] = t
	}
	streams := s.rules.Streams()
	dests := s.rules.Destinations()
	feeds := s.knownFeeds(topics, streams, dests)

	st.mu.Lock()
	defer st.mu.Unlock()
	seen := map[string]bool{}
	out := Status{Time: now, Feeds: []FeedStatus{}, Streams: []StreamStatus{}, Destinations: []DestinationStatus{}}
	tracks := map[string][]Track{}
	for _, f := range sortedNames(feeds) {
		fs := FeedStatus{Name: f, Up: feeds[f], Tracks: []Track{}, LastDataSeconds: -1}
		if t, ok := topics[agg.FeedTopic(f)]; ok {
			var grew time.Time
			fs.Bytes = t.BytesIn
			fs.BitRate, grew = st.look(agg.FeedTopic(f), t.BytesIn, now, seen)
			if !grew.IsZero() {
				fs.LastDataSeconds = now.Sub(grew).Seconds()
			}
		}
		if fs.Up {
			if info := st.probeFeed(f); info != nil && info.tracks != nil {
				fs.Tracks = info.tracks
				tracks[f] = info.tracks
			}
		}
		out.Feeds = append(out.Feeds, fs)
	}
	for _, name := range sortedNames(streams) {
		ss := StreamStatus{Name: name, Feeds: streams[name], Muted: muted(streams[name], feeds, tracks)}
		t := topics[agg.StreamTopic(name)]
		ss.Bytes = t.BytesIn
		ss.BitRate, _ = st.look(agg.StreamTopic(name), t.BytesIn, now, seen)
		out.Streams = append(out.Streams, ss)
	}
	for _, id := range sortedNames(dests) {
		d := dests[id]
		ds := DestinationStatus{ID: id, Stream: d.Stream, URL: safeURL(d.Destination), File: d.File, State: stateConnecting}
		if c, ok := s.rules.DestinationStats(id); ok {
			ds.State = destState(c.Connected, c.Failures)
			ds.Connects, ds.Failures, ds.Sent, ds.Dropped = c.Connects, c.Failures, c.Sent, c.Dropped
			ds.BackoffSeconds = c.Backoff.Seconds()
			ds.Shed = c.Shed
			ds.Bytes = c.SentBytes
			if c.Connected && !c.LastConnect.IsZero() {
				ds.ConnectedSeconds = max(now.Sub(c.LastConnect).Seconds(), 0)
			}
		}
		out.Destinations = append(out.Destinations, ds)
	}
	for topic := range st.samples {
		if !seen[topic] {
			delete(st.samples, topic)
		}
	}
	return out
}

// muted reports whether a stream carries no audio: none of its feeds has
// an audio track, and every live one has been probed.
func muted(feeds []string, up map[string]bool, tracks map[string][]Track) bool {
	for _, f := range feeds {
		t, probed := tracks[f]
		if up[f] && !probed {
			return false
		}
		for _, tr := range t {
			if tr.Kind == "audio" {
				return false
			}
		}
	}
	return true
}

// probeFeed returns what probing the feed's current POST found, and starts
// a probe if none has or is running. st.mu must be held.
func (st *statusState) probeFeed(feed string) *feedInfo {
	s := st.s
	s.mu.Lock()
	in := s.feeds[feed]
	if in == nil || s.closing {
		s.mu.Unlock()
		return nil
	}
	info := st.probes[feed]
	if info != nil && info.ingest == in.id && (info.running || info.tracks != nil) {
		s.mu.Unlock()
		return info
	}
	// Added under s.mu, so that Close, which waits for s.wg, either sees
	// it or has already set closing.
	s.wg.Add(1)
	s.mu.Unlock()
	info = &feedInfo{ingest: in.id, running: true}
	st.probes[feed] = info
	sub := s.hub.Subscribe(agg.FeedTopic(feed), hub.SubConfig{Queue: 64, Policy: hub.Drop})
	go func() {
		defer s.wg.Done()
		defer sub.Close()
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		tracks, _ := probe(ctx, s.done, sub)
		st.mu.Lock()
		defer st.mu.Unlock()
		info.tracks, info.running = tracks, false
	}()
	return info
}

// safeURL drops what a URL may carry that is secret: user info, query and
// fragment.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// handleStatus answers GET /status.
func (s *Server) handleStatus() http.Handler {
	st := s.newStatusState()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, st.status())
	})
}

//go:embed templates/status.html
var statusFiles embed.FS

// handleStatusPage serves the page at /, which shows /status and keeps it
// up to date. The template is compiled in: a parse error is a build defect
// every test catches.
func (s *Server) handleStatusPage() http.Handler {
	page := pagestyle.Tables(template.Must(template.ParseFS(statusFiles, "templates/status.html")))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := page.Execute(w, struct{ Preview bool }{s.cfg.Player != nil}); err != nil {
			s.log.WithField("err", err).Warn("rendering the status page")
		}
	})
}
