package crossbar

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/internal/jsonhttp"
	"github.com/vwlab/vw/internal/pagestyle"
)

// Stats is what /stats answers.
type Stats struct {
	// Since is when the relay started.
	Since  time.Time     `json:"since"`
	Topics []TopicReport `json:"topics"`
	// Cluster is this relay's cluster, when it is in one.
	Cluster *ClusterStatus `json:"cluster,omitempty"`
}

// TopicReport describes one topic of the relay: a stream (/out/{x}, fed by
// /in/{x}) or a bidirectional route, with its clients. (hub.TopicStats is
// the hub's counters alone.)
type TopicReport struct {
	Name       string `json:"name"`
	Publishers int    `json:"publishers"`
	// Viewers and Peers count the clients receiving: one still in its
	// handshake is not counted yet, so a message published once they
	// count reaches them.
	Viewers int `json:"viewers"`
	Peers   int `json:"peers"`
	// Counted by the hub: messages and bytes published, and delivered to
	// viewers' queues.
	MsgsIn   uint64 `json:"msgsIn"`
	BytesIn  uint64 `json:"bytesIn"`
	MsgsOut  uint64 `json:"msgsOut"`
	BytesOut uint64 `json:"bytesOut"`
	// RateIn and RateOut are bits per second over the last second.
	RateIn  float64 `json:"rateIn"`
	RateOut float64 `json:"rateOut"`
	// DroppedViewers counts viewers disconnected for being too slow (a full
	// queue, a backlog over QueueBytes, or a passed write deadline).
	DroppedViewers uint64 `json:"droppedViewers"`
	// Drops counts the clients the relay ended, by reason: queue_full,
	// backlog_bytes and write_timeout (which DroppedViewers sums),
	// token_expired, token_revoked, admin (CloseClients) and shutdown.
	// Reasons that ended none are left out.
	Drops map[string]uint64 `json:"drops,omitempty"`
	// DroppedMessages counts messages that found a full queue.
	DroppedMessages uint64 `json:"droppedMessages"`
	// CacheBytes is the memory a stream's keyframe cache holds (messages
	// that viewers' queues share, not copies), and KeyframeAgeMs how old
	// its keyframe is; absent while it holds none (a new stream before its
	// first keyframe, a GOP over the cache's bound).
	CacheBytes    uint64 `json:"cacheBytes"`
	KeyframeAgeMs *int64 `json:"keyframeAgeMs,omitempty"`
	// What the stream's viewers on links slower than it skipped to stay
	// within MaxDelay: GOPs that lost pictures (one per viewer), and bytes;
	// and how many viewers are skipping now.
	SkippedGops     uint64        `json:"skippedGops"`
	SkippedBytes    uint64        `json:"skippedBytes"`
	SkippingViewers int           `json:"skippingViewers"`
	Since           time.Time     `json:"since"`
	Clients         []ClientStats `json:"clients"`
}

// ClientStats describes one connection.
type ClientStats struct {
	ID   uint64 `json:"id"`
	Role Role   `json:"role"`
	// Path is the websocket path it connected on; Topic the topic that
	// joined it to (/out/{x} for /in/{x}).
	Path   string `json:"path"`
	Topic  string `json:"topic"`
	Remote string `json:"remote"`
	// TokenID is the id (jti) of the token it connected with, to deny if
	// need be; empty when it needed none.
	TokenID  string    `json:"tokenId,omitempty"`
	Since    time.Time `json:"since"`
	MsgsIn   uint64    `json:"msgsIn"`
	BytesIn  uint64    `json:"bytesIn"`
	MsgsOut  uint64    `json:"msgsOut"`
	BytesOut uint64    `json:"bytesOut"`
	// Ignored counts messages a viewer sent, which a one-way route drops.
	Ignored uint64 `json:"ignored,omitempty"`
	// Receiving: a viewer or peer is subscribed and gets every message
	// published from now on. It is counted from admission, a moment
	// before (its handshake is still being answered).
	Receiving bool `json:"receiving,omitempty"`
	// Queued is how many messages wait in the client's queue now.
	Queued int `json:"queued"`
	// A stream viewer's backlog, as the time its link takes to drain it
	// (0 when it keeps up); whether it is skipping now; and what it has
	// skipped to stay within MaxDelay.
	BehindMs     int64  `json:"behindMs,omitempty"`
	Skipping     bool   `json:"skipping,omitempty"`
	SkippedGops  uint64 `json:"skippedGops,omitempty"`
	SkippedBytes uint64 `json:"skippedBytes,omitempty"`
}

// rateSample is the last sample of a topic's byte counters.
type rateSample struct {
	at                time.Time
	bytesIn, bytesOut uint64
	in, out           float64
}

// sampleRates updates every topic's rates once a second until ctx ends.
func (s *Server) sampleRates(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.mu.Lock()
			for _, t := range s.topics {
				st := t.ht.Stats()
				r := &t.rate
				if dt := now.Sub(r.at).Seconds(); !r.at.IsZero() && dt > 0 {
					r.in = float64(st.BytesIn-r.bytesIn) * 8 / dt
					r.out = float64(st.BytesOut-r.bytesOut) * 8 / dt
				}
				r.at, r.bytesIn, r.bytesOut = now, st.BytesIn, st.BytesOut
			}
			s.mu.Unlock()
		}
	}
}

// Stats returns a snapshot of every topic and client, sorted by topic name
// and client age.
func (s *Server) Stats() Stats { return s.StatsFor(nil) }

// StatsFor is Stats of the topics sees reports true for (nil: all), as an
// admin's view filters them with auth.Grant.Sees. The others are skipped
// before their clients are walked.
func (s *Server) StatsFor(sees func(topic string) bool) Stats {
	cluster := s.clusterStatus(sees) // before the relay's lock: see clusterStatus
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stats{Since: s.started, Topics: make([]TopicReport, 0, len(s.topics)), Cluster: cluster}
	for _, t := range s.topics {
		if sees != nil && !sees(t.name) {
			continue
		}
		hs := t.ht.Stats()
		ts := TopicReport{
			Name:            t.name,
			MsgsIn:          hs.MsgsIn,
			BytesIn:         hs.BytesIn,
			MsgsOut:         hs.MsgsOut,
			BytesOut:        hs.BytesOut,
			RateIn:          t.rate.in,
			RateOut:         t.rate.out,
			DroppedMessages: hs.Dropped,
			SkippedGops:     t.shed.gops.Load(),
			SkippedBytes:    t.shed.bytes.Load(),
			Since:           t.since,
			Clients:         make([]ClientStats, 0, len(t.clients)),
		}
		ts.DroppedViewers, ts.Drops = t.dropCounts()
		if t.cache != nil {
			n, age, ok := t.cache.stats()
			ts.CacheBytes = uint64(n)
			if ok {
				ms := age.Milliseconds()
				ts.KeyframeAgeMs = &ms
			}
		}
		for _, c := range t.clients {
			switch {
			case c.role == Publisher:
				ts.Publishers++
			case c.sub == nil: // in its handshake: counted once receiving
			case c.role == Viewer:
				ts.Viewers++
			case c.role == Peer:
				ts.Peers++
			}
			cs := c.stats()
			if cs.Skipping {
				ts.SkippingViewers++
			}
			ts.Clients = append(ts.Clients, cs)
		}
		sort.Slice(ts.Clients, func(i, j int) bool { return ts.Clients[i].ID < ts.Clients[j].ID })
		out.Topics = append(out.Topics, ts)
	}
	sort.Slice(out.Topics, func(i, j int) bool { return out.Topics[i].Name < out.Topics[j].Name })
	return out
}

// stats describes the client; Server.mu must be held.
func (c *client) stats() ClientStats {
	cs := ClientStats{
		ID:       c.id,
		Role:     c.role,
		Path:     c.path,
		Topic:    c.topic.name,
		Remote:   c.addr,
		TokenID:  c.grant.ID,
		Since:    c.since,
		MsgsIn:   c.msgsIn.Load(),
		BytesIn:  c.bytesIn.Load(),
		MsgsOut:  c.msgsOut.Load(),
		BytesOut: c.bytesOut.Load(),
		Ignored:  c.ignored.Load(),
	}
	if c.sub != nil {
		cs.Receiving = true
		cs.Queued = len(c.sub.C())
	}
	if c.role == Viewer {
		c.shedStats(&cs)
	}
	return cs
}

//go:embed templates
var templates embed.FS

// newStatsPage parses the stats page; the template is compiled in, so a
// parse error is a build defect that every test catches.
func newStatsPage() *template.Template {
	return pagestyle.Tables(template.Must(template.New("stats.html").Funcs(template.FuncMap{
		"bytes": humanBytes,
		"rate": func(bps float64) string {
			return strconv.FormatFloat(bps/1e3, 'f', 0, 64) + " kbit/s"
		},
		"ago": func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
		"ms": func(ms int64) string {
			return (time.Duration(ms) * time.Millisecond).Round(100 * time.Millisecond).String()
		},
	}).ParseFS(templates, "templates/stats.html")))
}

// handleStats answers the topics g sees, as JSON, or HTML when asked for
// with ?format=html or when the Accept header prefers text/html (a
// browser).
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request, g *auth.Grant) {
	st := s.StatsFor(g.Sees)
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
		if prefersHTML(r.Header.Get("Accept")) {
			format = "html"
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Accept")
	switch format {
	case "json":
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	case "html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := s.statsPage.Execute(w, struct {
			Title string
			Stats
		}{s.cfg.Title, st}); err != nil {
			s.log.WithField("err", err).Warn("rendering the stats page")
		}
	default:
		httpError(w, http.StatusBadRequest, "format must be json or html")
	}
}

// prefersHTML reports whether an Accept header ranks text/html above
// application/json. No header, or */* alone, means JSON.
func prefersHTML(accept string) bool {
	qHTML, qJSON := -1.0, -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		switch mt {
		case "text/html":
			qHTML = max(qHTML, q)
		case "application/json":
			qJSON = max(qJSON, q)
		}
	}
	return qHTML > 0 && qHTML > qJSON
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + []string{"B", "KiB", "MiB", "GiB", "TiB"}[i]
}

// httpError answers with a JSON error, as every vw HTTP error does.
func httpError(w http.ResponseWriter, status int, msg string) { jsonhttp.Error(w, status, msg) }
