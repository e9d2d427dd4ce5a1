package crossbar

import (
	"bytes"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/scrape"
	"github.com/vwlab/vw/internal/testutil"
)

// TestMetricsMatchStats scrapes /metrics of a relay carrying a stream to
// three viewers and a bidirectional route between two peers, and checks
// every figure against /stats and against the bytes the test's own clients
// sent and received, exactly; then closes the stream and checks that the
// relay's totals keep what it carried.
func TestMetricsMatchStats(t *testing.T) {
	r := startRelay(t, Config{})
	pub := r.dial(t, "/in/lab1/cam")
	viewers := []*websocket.Conn{r.dial(t, "/out/lab1/cam"), r.dial(t, "/out/lab1/cam"), r.dial(t, "/out/lab1/cam")}
	peerA, peerB := r.dial(t, "/bi/lab1/api"), r.dial(t, "/bi/lab1/api")
	r.waitClients(t, "/out/lab1/cam", 1, 3, 0)
	r.waitClients(t, "/bi/lab1/api", 0, 0, 2)

	sent, received := carryTraffic(t, pub, viewers, peerA, peerB)
	// The hub counts a message once it has handed it to every receiver, so
	// a receiver can read it a moment before it is counted: wait for the
	// count of all of them, so that /metrics and /stats agree.
	testutil.Eventually(t, 5*time.Second, func() bool {
		return r.topic("/out/lab1/cam").MsgsOut == 3*trafficMsgs && r.topic("/bi/lab1/api").MsgsOut == 1
	}, "the relay to count what its clients read")
	m := scrape.Get(t, r.http.URL+"/metrics", nil)
	cam, api := r.topic("/out/lab1/cam"), r.topic("/bi/lab1/api")
	checkMetricsAgainst(t, m, cam, api, sent, received)

	// The stream closes: its series go, and the relay's totals keep it.
	for _, c := range append(viewers, pub) {
		_ = c.Close()
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return r.topic("/out/lab1/cam").Name == "" }, "the stream's topic to close")
	checkTotalsKept(t, r, cam, api)
}

// trafficMsgs is how many messages carryTraffic publishes.
const trafficMsgs = 50

// carryTraffic sends trafficMsgs messages from pub, reads them from every
// viewer and passes one from peerA to peerB; it returns the bytes pub sent
// and the viewers received.
func carryTraffic(t *testing.T, pub *websocket.Conn, viewers []*websocket.Conn, peerA, peerB *websocket.Conn) (sent, received int) {
	for i := range trafficMsgs {
		b := bytes.Repeat([]byte{'v'}, 1000+i*37) // not MPEG-TS: no PSI replayed
		send(t, pub, websocket.BinaryMessage, b)
		sent += len(b)
	}
	for _, v := range viewers {
		for range trafficMsgs {
			_, b := read(t, v)
			received += len(b)
		}
	}
	send(t, peerA, websocket.TextMessage, []byte(`{"verb":"healthcheck"}`))
	if _, b := read(t, peerB); string(b) != `{"verb":"healthcheck"}` {
		t.Fatalf("peer got %q", b)
	}
	return sent, received
}

// checkMetricsAgainst checks every figure of m against /stats (cam, api)
// and the bytes sent and received, exactly, and that the Go and process
// collectors are there. It is long because it is one table.
func checkMetricsAgainst(t *testing.T, m scrape.Families, cam, api TopicReport, sent, received int) {
	for _, c := range []struct {
		name, topic string
		got         float64
		want        uint64
	}{
		{"received bytes = what the publisher sent", "/out/lab1/cam", m.Value(t, "vw_relay_topic_received_bytes_total", "topic", "/out/lab1/cam"), uint64(sent)},
		{"received bytes = /stats", "/out/lab1/cam", m.Value(t, "vw_relay_topic_received_bytes_total", "topic", "/out/lab1/cam"), cam.BytesIn},
		{"received messages = /stats", "/out/lab1/cam", m.Value(t, "vw_relay_topic_received_messages_total", "topic", "/out/lab1/cam"), cam.MsgsIn},
		{"sent bytes = what the viewers read", "/out/lab1/cam", m.Value(t, "vw_relay_topic_sent_bytes_total", "topic", "/out/lab1/cam"), uint64(received)},
		{"sent bytes = /stats", "/out/lab1/cam", m.Value(t, "vw_relay_topic_sent_bytes_total", "topic", "/out/lab1/cam"), cam.BytesOut},
		{"sent messages = /stats", "/out/lab1/cam", m.Value(t, "vw_relay_topic_sent_messages_total", "topic", "/out/lab1/cam"), cam.MsgsOut},
		{"viewers", "/out/lab1/cam", m.Value(t, "vw_relay_topic_clients", "topic", "/out/lab1/cam", "role", "viewer"), 3},
		{"publishers", "/out/lab1/cam", m.Value(t, "vw_relay_topic_clients", "topic", "/out/lab1/cam", "role", "publisher"), 1},
		// A route with no publisher is summed under "other".
		{"other: received bytes = /stats", "/bi/lab1/api", m.Value(t, "vw_relay_topic_received_bytes_total", "topic", "other"), api.BytesIn},
		{"other: peers", "/bi/lab1/api", m.Value(t, "vw_relay_topic_clients", "topic", "other", "role", "peer"), 2},
		{"all viewers", "", m.Value(t, "vw_relay_clients", "role", "viewer"), 3},
		{"all peers", "", m.Value(t, "vw_relay_clients", "role", "peer"), 2},
		{"topics", "", m.Value(t, "vw_relay_topics"), 2},
		{"live streams", "", m.Value(t, "vw_relay_live_streams"), 1},
		{"relay received bytes", "", m.Value(t, "vw_relay_received_bytes_total"), cam.BytesIn + api.BytesIn},
		{"relay sent bytes", "", m.Value(t, "vw_relay_sent_bytes_total"), cam.BytesOut + api.BytesOut},
	} {
		if c.got != float64(c.want) {
			t.Errorf("%s (%s): /metrics says %v, want %d", c.name, c.topic, c.got, c.want)
		}
	}
	if len(m.Series("vw_relay_topic_received_bytes_total")) != 2 {
		t.Errorf("want series for /out/lab1/cam and other, got %d", len(m.Series("vw_relay_topic_received_bytes_total")))
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if len(m.Series(name)) == 0 {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
}

// checkTotalsKept: after the stream closed its series are gone, and the
// relay's totals still hold what it carried (cam and api, from /stats).
func checkTotalsKept(t *testing.T, r *relay, cam, api TopicReport) {
	m := scrape.Get(t, r.http.URL+"/metrics", nil)
	if _, ok := m.Find("vw_relay_topic_received_bytes_total", "topic", "/out/lab1/cam"); ok {
		t.Error("a closed topic still has series")
	}
	if got, want := m.Value(t, "vw_relay_received_bytes_total"), float64(cam.BytesIn+api.BytesIn); got != want {
		t.Errorf("relay received bytes after the stream closed: %v, want %v (it must never go down)", got, want)
	}
	if got, want := m.Value(t, "vw_relay_sent_messages_total"), float64(cam.MsgsOut+api.MsgsOut); got != want {
		t.Errorf("relay sent messages after the stream closed: %v, want %v", got, want)
	}
	if got := m.Value(t, "vw_relay_clients", "role", "viewer"); got != 0 {
		t.Errorf("viewers after they left: %v", got)
	}
}

// TestMetricsDroppedViewers: a viewer dropped for a full queue is counted
// under its reason, as /stats counts it.
func TestMetricsDroppedViewers(t *testing.T) {
	r := startRelay(t, Config{Queue: 8, WriteTimeout: 20 * time.Second})
	pub := r.dial(t, "/in/s")
	r.dialVia(t, "/out/s", tinyReceiveBuffer)
	r.waitClients(t, "/out/s", 1, 1, 0)
	b := make([]byte, 64<<10)
	for i := 0; i < 200 && r.topic("/out/s").DroppedViewers == 0; i++ {
		send(t, pub, websocket.BinaryMessage, b)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return r.topic("/out/s").DroppedViewers == 1 }, "the stalled viewer to be dropped")

	m := scrape.Get(t, r.http.URL+"/metrics", nil)
	for reason, want := range map[string]float64{"queue_full": 1, "backlog_bytes": 0, "write_timeout": 0} {
		if got := m.Value(t, "vw_relay_dropped_viewers_total", "reason", reason); got != want {
			t.Errorf("dropped viewers, %s: %v, want %v", reason, got, want)
		}
	}
	if got := m.Value(t, "vw_relay_topic_dropped_viewers_total", "topic", "/out/s"); got != 1 {
		t.Errorf("the topic's dropped viewers: %v", got)
	}
}

// TestMetricsNeedAdmin: with auth on, /metrics (which names private topics)
// answers only a token with scope admin, and shows a lab's admin only the
// topics under its path.
func TestMetricsNeedAdmin(t *testing.T) {
	r := startAuthRelay(t, Config{})
	r.publishing(t, "lab1/cam", "lab2/cam")
	for _, tc := range []struct {
		name, tok string
		status    int
		sees      []string // the streams it shows
	}{
		{"no token", "", http.StatusUnauthorized, nil},
		{"bad token", "x.y.z", http.StatusUnauthorized, nil},
		{"read and write", r.mint(t, "/", "read,write"), http.StatusForbidden, nil},
		{"admin", r.mint(t, "/", "admin"), http.StatusOK, []string{"/out/lab1/cam", "/out/lab2/cam"}},
		{"lab2's admin", r.mint(t, "lab2/", "admin"), http.StatusOK, []string{"/out/lab2/cam"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, status, body := scrape.Try(t, r.http.URL+"/metrics", bearer(tc.tok))
			if status != tc.status {
				t.Fatalf("GET /metrics: %d %s, want %d", status, body, tc.status)
			}
			if status != http.StatusOK {
				if body == "" || body[0] != '{' {
					t.Fatalf("refusal body %q, want a JSON reason", body)
				}
				return
			}
			var topics []string
			for _, s := range m.Series("vw_relay_topic_received_bytes_total") {
				topics = append(topics, scrape.Labels(s)["topic"])
			}
			slices.Sort(topics)
			if !slices.Equal(topics, tc.sees) {
				t.Fatalf("shows topics %v, want %v", topics, tc.sees)
			}
			if got := m.Value(t, "vw_relay_clients", "role", "publisher"); got != float64(len(tc.sees)) {
				t.Fatalf("counts %v publishers, want those of %v", got, tc.sees)
			}
		})
	}
}

// TestMetricsRefusalsAndCodes refuses handshakes the test chooses and
// spends access codes on a relay with auth on: /metrics counts each
// refusal under its status and each code issued and redeemed, exactly. A
// lab's admin does not see these relay-wide counts.
func TestMetricsRefusalsAndCodes(t *testing.T) {
	r := startAuthRelay(t, Config{})
	for range 3 {
		if rf := r.handshakeWith(t, "/out/lab1/cam", nil); rf.status != http.StatusUnauthorized {
			t.Fatalf("no token: %d, want 401", rf.status)
		}
	}
	if rf := r.handshakeWith(t, "/in/lab1/cam", bearer(r.mint(t, "lab1/", "read"))); rf.status != http.StatusForbidden {
		t.Fatalf("a read token publishing: %d, want 403", rf.status)
	}
	reader := r.mint(t, "lab1/", "read")
	spent := r.code(t, "/out/lab1/cam", reader)
	r.code(t, "/out/lab1/cam", reader) // issued, never used
	r.dialWith(t, spent, nil)
	if rf := r.handshakeWith(t, spent, nil); rf.status != http.StatusUnauthorized {
		t.Fatalf("a code presented again: %d, want 401", rf.status)
	}

	m := scrape.Get(t, r.http.URL+"/metrics", bearer(r.mint(t, "/", "admin")))
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"vw_relay_handshakes_refused_total", []string{"status", "401"}, 4},
		{"vw_relay_handshakes_refused_total", []string{"status", "403"}, 1},
		{"vw_relay_handshakes_refused_total", []string{"status", "429"}, 0},
		{"vw_relay_access_codes_issued_total", nil, 2},
		{"vw_relay_access_codes_redeemed_total", nil, 1},
	} {
		if got := m.Value(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	lab := scrape.Get(t, r.http.URL+"/metrics", bearer(r.mint(t, "lab1/", "admin")))
	if n := len(lab.Series("vw_relay_handshakes_refused_total")) + len(lab.Series("vw_relay_access_codes_issued_total")); n != 0 {
		t.Errorf("a lab's admin sees %d relay-wide series", n)
	}
}
