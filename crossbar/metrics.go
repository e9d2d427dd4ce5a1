package crossbar

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vwlab/vw/auth"
)

// The relay's /metrics are read when Prometheus scrapes, from the counters
// the relay keeps anyway (the hub's per-topic counters, the relay's drop
// counters, its client lists): nothing is added to the per-message path.
//
// Topic names are chosen by whoever connects, so per-topic series are kept
// for topics with a publisher only, at most Config.MetricsTopics of them
// (the oldest); every other topic is summed under topic="other". Relay-wide
// totals count closed topics too (endedTopics), so that they never go down.
// An admin token for a path (lab1/) sees only the topics under it, and its
// totals are those topics' sums: closed topics are not kept by path.

// otherTopics labels the sum of the topics not reported one by one. Topic
// names start with "/", so no topic can be called this.
const otherTopics = "other"

// counts are a topic's counters as /stats reports them.
type counts struct {
	msgsIn, bytesIn, msgsOut, bytesOut, droppedMsgs uint64
	// Viewers dropped for being too slow, by why: their queue was full
	// (the hub kicked them), their backlog passed QueueBytes, or a write
	// passed its deadline.
	queueFull, backlogBytes, writeTimeout uint64
	// What viewers on links slower than the stream skipped (behind.go).
	skippedGops, skippedBytes uint64
}

func (c *counts) add(o counts) {
	c.msgsIn += o.msgsIn
	c.bytesIn += o.bytesIn
	c.msgsOut += o.msgsOut
	c.bytesOut += o.bytesOut
	c.droppedMsgs += o.droppedMsgs
	c.queueFull += o.queueFull
	c.backlogBytes += o.backlogBytes
	c.writeTimeout += o.writeTimeout
	c.skippedGops += o.skippedGops
	c.skippedBytes += o.skippedBytes
}

func (c counts) droppedViewers() uint64 { return c.queueFull + c.backlogBytes + c.writeTimeout }

func topicCounts(t *topic) counts {
	hs := t.ht.Stats()
	return counts{
		msgsIn: hs.MsgsIn, bytesIn: hs.BytesIn, msgsOut: hs.MsgsOut, bytesOut: hs.BytesOut,
		droppedMsgs: hs.Dropped,
		queueFull:   t.drops[dropQueueFull].Load(), backlogBytes: t.drops[dropBacklog].Load(),
		writeTimeout: t.drops[dropWriteDeadline].Load(),
		skippedGops:  t.shed.gops.Load(), skippedBytes: t.shed.bytes.Load(),
	}
}

// endedTopics sums what closed topics counted. Guarded by Server.mu.
type endedTopics struct{ counts }

// add is called as t closes, when no client is left to count more.
func (e *endedTopics) add(t *topic) { e.counts.add(topicCounts(t)) }

// topicSnapshot is one live topic at scrape time.
type topicSnapshot struct {
	name    string
	since   time.Time
	clients map[Role]int
	cache   int64 // bytes its keyframe cache holds now
	// skipping counts its viewers skipping now.
	skipping int
	counts
}

// metricsSnapshot reads the counters of every live topic g sees, and, for
// an admin of the whole relay, the closed topics' sum, under one lock.
func (s *Server) metricsSnapshot(g *auth.Grant) ([]topicSnapshot, counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]topicSnapshot, 0, len(s.topics))
	for _, t := range s.topics {
		if !g.Sees(t.name) {
			continue
		}
		ts := topicSnapshot{name: t.name, since: t.since, clients: map[Role]int{}, counts: topicCounts(t)}
		if t.cache != nil {
			ts.cache, _, _ = t.cache.stats()
		}
		for _, c := range t.clients {
			ts.clients[c.role]++
			if c.shed.held.Load() {
				ts.skipping++
			}
		}
		out = append(out, ts)
	}
	if g.Path != "/" {
		return out, counts{} // closed topics are not kept by path
	}
	return out, s.ended.counts
}

// relayCollector is the relay's prometheus.Collector, as one admin sees it.
type relayCollector struct {
	s     *Server
	g     *auth.Grant
	descs relayDescs
}

type relayDescs struct {
	clients, topics, liveStreams                                 *prometheus.Desc
	msgsIn, bytesIn, msgsOut, bytesOut, droppedMsgs, droppedView *prometheus.Desc
	tClients, tMsgsIn, tBytesIn, tMsgsOut, tBytesOut             *prometheus.Desc
	tDroppedMsgs, tDroppedView                                   *prometheus.Desc
	refused, codesIssued, codesRedeemed                          *prometheus.Desc
	cacheBytes, tCacheBytes                                      *prometheus.Desc
	skippedGops, skippedBytes, skipping                          *prometheus.Desc
	tSkippedGops, tSkippedBytes, tSkipping                       *prometheus.Desc
}

func newRelayCollector(s *Server, g *auth.Grant) *relayCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("vw_relay_"+name, help, labels, nil)
	}
	const perTopic = ` Topics with a publisher, up to a cap; the others summed under topic="other", which may go down as topics close.`
	return &relayCollector{s: s, g: g, descs: relayDescs{
		clients:       d("clients", "Websocket clients connected now, by role (publisher, viewer, peer).", "role"),
		topics:        d("topics", "Topics open now: streams (/out/...) and bidirectional routes."),
		liveStreams:   d("live_streams", "Streams with a publisher now."),
		msgsIn:        d("received_messages_total", "Messages received from publishers and peers."),
		bytesIn:       d("received_bytes_total", "Payload bytes received from publishers and peers."),
		msgsOut:       d("sent_messages_total", "Messages handed to viewers and peers (one per receiver)."),
		bytesOut:      d("sent_bytes_total", "Payload bytes handed to viewers and peers (once per receiver)."),
		droppedMsgs:   d("dropped_messages_total", "Messages not handed to a viewer because its queue was full."),
		droppedView:   d("dropped_viewers_total", "Viewers disconnected for being too slow, by reason (queue_full, backlog_bytes, write_timeout).", "reason"),
		tClients:      d("topic_clients", "Clients of a topic now, by role."+perTopic, "topic", "role"),
		tMsgsIn:       d("topic_received_messages_total", "Messages received on a topic."+perTopic, "topic"),
		tBytesIn:      d("topic_received_bytes_total", "Payload bytes received on a topic."+perTopic, "topic"),
		tMsgsOut:      d("topic_sent_messages_total", "Messages handed to a topic's receivers."+perTopic, "topic"),
		tBytesOut:     d("topic_sent_bytes_total", "Payload bytes handed to a topic's receivers."+perTopic, "topic"),
		tDroppedMsgs:  d("topic_dropped_messages_total", "Messages a topic's viewers missed for a full queue."+perTopic, "topic"),
		tDroppedView:  d("topic_dropped_viewers_total", "A topic's viewers disconnected for being too slow."+perTopic, "topic"),
		cacheBytes:    d("cache_bytes", "Memory the streams' keyframe caches hold now (messages shared with viewers' queues, not copies)."),
		tCacheBytes:   d("topic_cache_bytes", "Memory a stream's keyframe cache holds now."+perTopic, "topic"),
		refused:       d("handshakes_refused_total", "Websocket handshakes refused, by HTTP status (400 route, 401/403 auth, 429/503 limits).", "status"),
		codesIssued:   d("access_codes_issued_total", "One-time access codes issued to players."),
		codesRedeemed: d("access_codes_redeemed_total", "Access codes presented once, in time, for their route: connections they let in."),
		skippedGops:   d("skipped_gops_total", "GOPs that lost pictures for a viewer on a link slower than its stream (one per viewer), to keep it within the delay bound."),
		skippedBytes:  d("skipped_bytes_total", "Bytes of streams skipped for viewers on links slower than them."),
		skipping:      d("skipping_viewers", "Viewers skipping now: their links are slower than their streams."),
		tSkippedGops:  d("topic_skipped_gops_total", "GOPs that lost pictures for a stream's slow viewers (one per viewer)."+perTopic, "topic"),
		tSkippedBytes: d("topic_skipped_bytes_total", "Bytes of a stream skipped for its slow viewers."+perTopic, "topic"),
		tSkipping:     d("topic_skipping_viewers", "A stream's viewers skipping now."+perTopic, "topic"),
	}}
}

func (c *relayCollector) Describe(ch chan<- *prometheus.Desc) {
	d := c.descs
	for _, x := range []*prometheus.Desc{d.clients, d.topics, d.liveStreams, d.msgsIn, d.bytesIn, d.msgsOut, d.bytesOut,
		d.droppedMsgs, d.droppedView, d.tClients, d.tMsgsIn, d.tBytesIn, d.tMsgsOut, d.tBytesOut, d.tDroppedMsgs, d.tDroppedView,
		d.refused, d.codesIssued, d.codesRedeemed, d.cacheBytes, d.tCacheBytes,
		d.skippedGops, d.skippedBytes, d.skipping, d.tSkippedGops, d.tSkippedBytes, d.tSkipping} {
		ch <- x
	}
}

var roles = []Role{Publisher, Viewer, Peer}

func (c *relayCollector) Collect(ch chan<- prometheus.Metric) {
	topics, total := c.s.metricsSnapshot(c.g)
	d := c.descs
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(v), labels...)
	}

	// The oldest streams keep their own series, so that a series does not
	// move in and out of "other" as newer topics come and go.
	slices.SortFunc(topics, func(a, b topicSnapshot) int {
		if p, q := a.clients[Publisher] > 0, b.clients[Publisher] > 0; p != q {
			if p {
				return -1
			}
			return 1
		}
		return cmp.Or(a.since.Compare(b.since), cmp.Compare(a.name, b.name))
	})
	clients := map[Role]int{}
	live := 0
	other := topicSnapshot{name: otherTopics, clients: map[Role]int{}}
	folded := 0
	var cache int64
	skipping := 0
	for i, t := range topics {
		total.add(t.counts)
		cache += t.cache
		skipping += t.skipping
		for r, n := range t.clients {
			clients[r] += n
		}
		if t.clients[Publisher] > 0 {
			live++
		}
		if i >= c.s.cfg.MetricsTopics || t.clients[Publisher] == 0 {
			other.counts.add(t.counts)
			other.cache += t.cache
			other.skipping += t.skipping
			for r, n := range t.clients {
				other.clients[r] += n
			}
			folded++
			continue
		}
		c.collectTopic(ch, t)
	}
	if folded > 0 {
		c.collectTopic(ch, other)
	}

	for _, r := range roles {
		gauge(d.clients, clients[r], string(r))
	}
	gauge(d.topics, len(topics))
	gauge(d.liveStreams, live)
	gauge(d.cacheBytes, int(cache))
	counter(d.msgsIn, total.msgsIn)
	counter(d.bytesIn, total.bytesIn)
	counter(d.msgsOut, total.msgsOut)
	counter(d.bytesOut, total.bytesOut)
	counter(d.droppedMsgs, total.droppedMsgs)
	counter(d.droppedView, total.queueFull, "queue_full")
	counter(d.droppedView, total.backlogBytes, "backlog_bytes")
	counter(d.droppedView, total.writeTimeout, "write_timeout")
	counter(d.skippedGops, total.skippedGops)
	counter(d.skippedBytes, total.skippedBytes)
	gauge(d.skipping, skipping)
	if c.g.Path == "/" {
		c.collectRelayWide(ch)
	}
}

// collectRelayWide reports what is counted for the relay as a whole, not
// by topic: for an admin of the whole relay only.
func (c *relayCollector) collectRelayWide(ch chan<- prometheus.Metric) {
	d := c.descs
	for st, n := range c.s.refused.counts() {
		ch <- prometheus.MustNewConstMetric(d.refused, prometheus.CounterValue, float64(n), st)
	}
	issued, redeemed := c.s.auth.CodeCounts()
	ch <- prometheus.MustNewConstMetric(d.codesIssued, prometheus.CounterValue, float64(issued))
	ch <- prometheus.MustNewConstMetric(d.codesRedeemed, prometheus.CounterValue, float64(redeemed))
}

func (c *relayCollector) collectTopic(ch chan<- prometheus.Metric, t topicSnapshot) {
	d := c.descs
	counter := func(desc *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), t.name)
	}
	for _, r := range roles {
		ch <- prometheus.MustNewConstMetric(d.tClients, prometheus.GaugeValue, float64(t.clients[r]), t.name, string(r))
	}
	counter(d.tMsgsIn, t.msgsIn)
	counter(d.tBytesIn, t.bytesIn)
	counter(d.tMsgsOut, t.msgsOut)
	counter(d.tBytesOut, t.bytesOut)
	counter(d.tDroppedMsgs, t.droppedMsgs)
	counter(d.tDroppedView, t.droppedViewers())
	ch <- prometheus.MustNewConstMetric(d.tCacheBytes, prometheus.GaugeValue, float64(t.cache), t.name)
	counter(d.tSkippedGops, t.skippedGops)
	counter(d.tSkippedBytes, t.skippedBytes)
	ch <- prometheus.MustNewConstMetric(d.tSkipping, prometheus.GaugeValue, float64(t.skipping), t.name)
}

// handleMetrics serves the relay's metrics as the admin g may see them
// (adminOnly), with the Go runtime's and the process's, in the Prometheus
// text format. A registry per scrape, because what it shows depends on g:
// a few collectors built every 15 s or so.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, g *auth.Grant) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newRelayCollector(s, g),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}
