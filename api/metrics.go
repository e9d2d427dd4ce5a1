package api

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vwlab/vw/agg"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/ts"
)

// vw stream's /metrics are read when Prometheus scrapes, from what vw
// stream keeps anyway: the live ingests, the hub's per-topic counters (a
// feed's topic counts what its POST brought, a stream's what its muxer
// sent out), the rules, and each destination client's counters. Nothing is
// added to the per-packet path. Feeds, streams and destinations are named by
// the operator (the API is local or token-bound), so every one has its
// series.

// Destination states, as vw_stream_destinations{state} counts them.
const (
	stateConnected  = "connected"
	stateBackingOff = "backing_off" // a dial has failed; waiting to redial
	stateConnecting = "connecting"  // no connection yet, no failure yet
)

type streamCollector struct {
	s *Server
	d map[string]*prometheus.Desc
}

func newStreamCollector(s *Server) *streamCollector {
	c := &streamCollector{s: s, d: map[string]*prometheus.Desc{}}
	add := func(name, help string, labels ...string) {
		c.d[name] = prometheus.NewDesc("vw_stream_"+name, help, labels, nil)
	}
	add("feed_up", "1 while a feed's POST is connected; 0 for a feed a rule names that has none.", "feed")
	add("feed_received_bytes_total", "MPEG-TS bytes a feed's POSTs brought, in whole packets, since its topic opened.", "feed")
	add("feed_received_packets_total", "MPEG-TS packets a feed's POSTs brought since its topic opened.", "feed")
	add("feed_continuity_errors_total", "Packets of a feed whose continuity counter did not follow its PID's last one (packets lost before vw stream), across its POSTs.", "feed")
	add("feed_resyncs_total", "Times a feed's input lost packet sync and found it again, across its POSTs.", "feed")
	add("feed_skipped_bytes_total", "Bytes of a feed's input dropped because they were not whole MPEG-TS packets, across its POSTs.", "feed")
	add("stream_feeds", "Feeds a stream rule combines (fewer after a mute).", "stream")
	add("stream_mute_changes_total", "Rule changes that changed which feeds a stream combines (mutes and unmutes) since the stream started.", "stream")
	add("stream_pmt_versions_total", "PMT versions a stream's muxer sent out since the stream started: one when a feed first went live, one per change of its tracks.", "stream")
	add("stream_output_bytes_total", "Bytes a stream's muxer sent out since the stream started.", "stream")
	add("stream_output_messages_total", "Messages a stream's muxer sent out since the stream started.", "stream")
	add("destinations", "Destinations by state: connected, backing_off (a dial failed), connecting.", "state")
	add("destination_up", "1 while a destination's connection is up.", "id", "stream")
	add("destination_recording", "1 when a destination also records to a file.", "id")
	add("destination_connects_total", "Connections a destination's client made (reconnects are the ones after the first).", "id")
	add("destination_dial_failures_total", "Dials of a destination that failed.", "id")
	add("destination_sent_messages_total", "Messages a destination's client wrote to its connections.", "id")
	add("destination_dropped_messages_total", "Messages a destination's client could not send (queue full, or lost with a connection).", "id")
	add("destination_sent_bytes_total", "Payload bytes of the messages a destination's client wrote to its connections.", "id")
	add("destination_reconnects_total", "Connections a destination's client made after its first.", "id")
	add("destination_last_connect_timestamp_seconds", "When a destination's client last connected, in Unix seconds; absent before its first connection.", "id")
	add("destination_backoff_seconds", "The wait before the latest redial of a destination (0 before any).", "id")
	add("destination_shedding", "1 while a destination drops video to stay within its max_delay on a slow link.", "id")
	add("destination_behind_seconds", "How long a destination's connection needs to deliver what it holds.", "id")
	add("destination_skipped_gops_total", "GOPs some or all of whose pictures a destination dropped to stay live.", "id")
	add("destination_skipped_bytes_total", "Bytes a destination dropped to stay live.", "id")
	add("destination_skipped_audio_frames_total", "Audio frames a destination dropped because even audio could not arrive in time.", "id")
	return c
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d {
		ch <- d
	}
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	emit := func(name string, kind prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.d[name], kind, v, labels...)
	}
	topics := map[string]hub.TopicStats{}
	for _, st := range c.s.hub.Stats() {
		topics[st.Name] = st
	}
	streams := c.s.rules.Streams()
	dests := c.s.rules.Destinations()

	feeds := c.s.knownFeeds(topics, streams, dests)
	counts := c.s.feedCounts()
	for f, up := range feeds {
		emit("feed_up", prometheus.GaugeValue, b2f(up), f)
		if fc := counts[f]; fc != nil {
			emit("feed_continuity_errors_total", prometheus.CounterValue, float64(fc.ccErrors.Load()), f)
			emit("feed_resyncs_total", prometheus.CounterValue, float64(fc.resyncs.Load()), f)
			emit("feed_skipped_bytes_total", prometheus.CounterValue, float64(fc.skipped.Load()), f)
		}
		if st, ok := topics[agg.FeedTopic(f)]; ok {
			emit("feed_received_bytes_total", prometheus.CounterValue, float64(st.BytesIn), f)
			emit("feed_received_packets_total", prometheus.CounterValue, float64(st.BytesIn/ts.PacketSize), f)
		}
	}

	for name, fs := range streams {
		emit("stream_feeds", prometheus.GaugeValue, float64(len(fs)), name)
		st := topics[agg.StreamTopic(name)]
		emit("stream_output_bytes_total", prometheus.CounterValue, float64(st.BytesIn), name)
		emit("stream_output_messages_total", prometheus.CounterValue, float64(st.MsgsIn), name)
		if n, ok := c.s.rules.StreamCounters(name); ok {
			emit("stream_mute_changes_total", prometheus.CounterValue, float64(n.MuteChanges), name)
			emit("stream_pmt_versions_total", prometheus.CounterValue, float64(n.PMTVersions), name)
		}
	}

	states := map[string]int{stateConnected: 0, stateBackingOff: 0, stateConnecting: 0}
	for id, d := range dests {
		st, ok := c.s.rules.DestinationStats(id)
		if !ok {
			continue // deleted since Destinations
		}
		states[destState(st.Connected, st.Failures)]++
		emit("destination_up", prometheus.GaugeValue, b2f(st.Connected), id, d.Stream)
		emit("destination_recording", prometheus.GaugeValue, b2f(d.File != ""), id)
		emit("destination_connects_total", prometheus.CounterValue, float64(st.Connects), id)
		emit("destination_dial_failures_total", prometheus.CounterValue, float64(st.Failures), id)
		emit("destination_sent_messages_total", prometheus.CounterValue, float64(st.Sent), id)
		emit("destination_dropped_messages_total", prometheus.CounterValue, float64(st.Dropped), id)
		emit("destination_backoff_seconds", prometheus.GaugeValue, st.Backoff.Seconds(), id)
		emit("destination_shedding", prometheus.GaugeValue, b2f(st.Shed.Shedding), id)
		emit("destination_behind_seconds", prometheus.GaugeValue, st.Shed.Behind.Seconds(), id)
		emit("destination_skipped_gops_total", prometheus.CounterValue, float64(st.Shed.SkippedGOPs), id)
		emit("destination_skipped_bytes_total", prometheus.CounterValue, float64(st.Shed.SkippedBytes), id)
		emit("destination_skipped_audio_frames_total", prometheus.CounterValue, float64(st.Shed.SkippedAudio), id)
		emit("destination_sent_bytes_total", prometheus.CounterValue, float64(st.SentBytes), id)
		emit("destination_reconnects_total", prometheus.CounterValue, float64(max(st.Connects, 1)-1), id)
		if !st.LastConnect.IsZero() {
			emit("destination_last_connect_timestamp_seconds", prometheus.GaugeValue, float64(st.LastConnect.UnixNano())/1e9, id)
		}
	}
	for state, n := range states {
		emit("destinations", prometheus.GaugeValue, float64(n), state)
	}
}

// destState names a destination client's state.
func destState(connected bool, failures uint64) string {
	switch {
	case connected:
		return stateConnected
	case failures > 0:
		return stateBackingOff
	}
	return stateConnecting
}

// knownFeeds returns the feeds worth reporting, each true while a POST
// is connected: those with a POST, those whose topic is open, and those a
// rule names (a stream's, or a destination's that names a feed directly).
func (s *Server) knownFeeds(topics map[string]hub.TopicStats, streams map[string][]string, dests map[string]rules.DestinationView) map[string]bool {
	s.mu.Lock()
	feeds := make(map[string]bool, len(s.feeds))
	for f := range s.feeds {
		feeds[f] = true
	}
	s.mu.Unlock()
	known := func(f string) {
		if _, ok := feeds[f]; !ok {
			feeds[f] = false
		}
	}
	for _, fs := range streams {
		for _, f := range fs {
			known(f)
		}
	}
	for name := range topics {
		// feed/api carries the control API's commands, not a feed.
		if f, ok := strings.CutPrefix(name, agg.FeedTopic("")); ok && f != rules.APIStream {
			known(f)
		}
	}
	for _, d := range dests {
		if _, isStream := streams[d.Stream]; !isStream && d.Stream != rules.APIStream {
			known(d.Stream)
		}
	}
	return feeds
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// handleMetrics serves vw stream's metrics, with the Go runtime's and the
// process's, in the Prometheus text format.
func (s *Server) handleMetrics() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStreamCollector(s),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
