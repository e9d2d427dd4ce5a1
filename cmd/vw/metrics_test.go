package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/scrape"
	"github.com/vwlab/vw/internal/testutil"
)

// recordFeed has ffmpeg write a few seconds of a camera feed to a file, as
// it would POST it, and returns the file.
func recordFeed(t *testing.T, seconds int) string {
	t.Helper()
	bin := testutil.NeedTool(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "feed.ts")
	args := []string{"-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-t", fmt.Sprint(seconds), "-c:v", "mpeg1video", "-b:v", "500k", "-bf", "0", "-f", "mpegts", "-muxdelay", "0.001", out}
	if b, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// TestStreamMetrics scrapes vw stream's /metrics through a feed's life: a
// real ffmpeg recording POSTed as a feed, a stream rule and a destination
// to a real relay with a viewer on it. The feed's bytes are exactly what the
// test POSTed; the stream's output is exactly what the relay received and
// what the viewer counted; the destination's messages what the relay
// counted. When the relay goes away the destination shows backing off.
func TestStreamMetrics(t *testing.T) {
	file := recordFeed(t, 2)
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	relay := relayProc(t)
	stream := streamProc(t)
	metrics := "http://" + stream.addr + "/metrics"
	postRule(t, stream, "/api/streams", `{"stream":"front","feeds":["video0"]}`)
	postRule(t, stream, "/api/destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/front","id":"0"}`)
	v := watch(t, relay, "/out/lab1/front")
	testutil.Eventually(t, 10*time.Second, func() bool {
		ts, ok := topicStats(t, relay, "out/lab1/front")
		return ok && ts.Publishers == 1 && ts.Viewers == 1
	}, "the destination and the viewer at the relay")

	m := scrape.Get(t, metrics, nil)
	m.Expect(t,
		scrape.Want{Name: "vw_stream_feed_up", Labels: []string{"feed", "video0"}, Value: 0},
		scrape.Want{Name: "vw_stream_stream_feeds", Labels: []string{"stream", "front"}, Value: 1},
		scrape.Want{Name: "vw_stream_destination_up", Labels: []string{"id", "0", "stream", "front"}, Value: 1},
		scrape.Want{Name: "vw_stream_destinations", Labels: []string{"state", "connected"}, Value: 1},
		scrape.Want{Name: "vw_stream_destination_connects_total", Labels: []string{"id", "0"}, Value: 1},
	)

	// The feed: the recording, POSTed as ffmpeg would (one request, the
	// whole of it).
	resp, err := http.Post("http://"+stream.addr+"/ts/video0", "video/mp2t", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m = scrape.Get(t, metrics, nil)
	if got := m.Value(t, "vw_stream_feed_received_bytes_total", "feed", "video0"); got != float64(len(body)) {
		t.Errorf("feed bytes %v, want the %d the test POSTed", got, len(body))
	}
	if got := m.Value(t, "vw_stream_feed_received_packets_total", "feed", "video0"); got != float64(len(body)/188) {
		t.Errorf("feed packets %v, want %d", got, len(body)/188)
	}

	// Once the muxer has sent its last message, three counts of the
	// stream agree: vw stream's, the relay's and the viewer's.
	var out, sent float64
	agree := testutil.WaitFor(15*time.Second, func() bool {
		m = scrape.Get(t, metrics, nil)
		out = m.Value(t, "vw_stream_stream_output_bytes_total", "stream", "front")
		sent = m.Value(t, "vw_stream_destination_sent_messages_total", "id", "0")
		ts, _ := topicStats(t, relay, "out/lab1/front")
		return out > float64(len(body))/2 && float64(ts.BytesIn) == out && float64(v.size()) == out && float64(ts.MsgsIn) == sent
	})
	if !agree {
		ts, _ := topicStats(t, relay, "out/lab1/front")
		t.Fatalf("stream output %v bytes, relay received %d, viewer counted %d; destination sent %v messages, relay received %d",
			out, ts.BytesIn, v.size(), sent, ts.MsgsIn)
	}
	if got := m.Value(t, "vw_stream_destination_dropped_messages_total", "id", "0"); got != 0 {
		t.Errorf("destination dropped %v messages", got)
	}
	if len(m.Series("go_goroutines")) == 0 || len(m.Series("process_cpu_seconds_total")) == 0 {
		t.Error("the Go and process collectors are missing")
	}

	// The relay goes away: the destination backs off, and says so.
	relay.kill()
	testutil.Eventually(t, 10*time.Second, func() bool {
		m = scrape.Get(t, metrics, nil)
		return m.Value(t, "vw_stream_destinations", "state", "backing_off") == 1 &&
			m.Value(t, "vw_stream_destination_up", "id", "0", "stream", "front") == 0 &&
			m.Value(t, "vw_stream_destination_dial_failures_total", "id", "0") > 0
	}, "the destination to show backing off")
}

// TestStreamMetricsNeedToken: /metrics follows the API's rules: with
// VW_API_TOKEN set, it needs the token.
func TestStreamMetricsNeedToken(t *testing.T) {
	stream := streamProc(t, "VW_API_TOKEN=s3cret")
	_, status, _ := scrape.Try(t, "http://"+stream.addr+"/metrics", nil)
	if status != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d, want 401", status)
	}
	m := scrape.Get(t, "http://"+stream.addr+"/metrics", http.Header{"Authorization": {"Bearer s3cret"}})
	if got := m.Value(t, "vw_stream_destinations", "state", "connected"); got != 0 {
		t.Fatalf("connected destinations: %v", got)
	}
}

// TestRelayMetricsCardinality opens 5,000 streams on a relay (one publisher
// each, as anyone with a write token could): /metrics keeps one set of
// series for each of the 200 oldest and sums the rest under "other", so
// opening topics cannot blow up what Prometheus stores.
func TestRelayMetricsCardinality(t *testing.T) {
	const topics, capped = 5000, 200 // capped: the relay's default
	relay := relayProc(t, "VW_RELAY_MAX_CONNS_PER_ADDR=6000", "VW_LOGLEVEL=warn")
	conns := make([]*websocket.Conn, topics)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	})
	dial := func(i int) error {
		c, resp, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/in/t%04d", relay.addr, i), nil)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		conns[i] = c
		return err
	}
	// The first ones one after another, so that they are the oldest.
	for i := range capped {
		if err := dial(i); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, topics)
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				if err := dial(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := capped; i < topics; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var m scrape.Families
	testutil.Eventually(t, 20*time.Second, func() bool {
		m = scrape.Get(t, "http://"+relay.addr+"/metrics", nil)
		return m.Value(t, "vw_relay_live_streams") == topics
	}, "the relay to count %d live streams", topics)
	for _, name := range []string{"vw_relay_topic_received_bytes_total", "vw_relay_topic_sent_messages_total", "vw_relay_topic_dropped_viewers_total"} {
		if n := len(m.Series(name)); n != capped+1 {
			t.Errorf("%s has %d series, want %d streams and other", name, n, capped)
		}
	}
	if n := len(m.Series("vw_relay_topic_clients")); n != 3*(capped+1) {
		t.Errorf("vw_relay_topic_clients has %d series, want 3 roles × %d", n, capped+1)
	}
	for i := range capped {
		if _, ok := m.Find("vw_relay_topic_received_bytes_total", "topic", fmt.Sprintf("/out/t%04d", i)); !ok {
			t.Fatalf("no series for /out/t%04d, one of the oldest", i)
		}
	}
	if got := m.Value(t, "vw_relay_topic_clients", "topic", "other", "role", "publisher"); got != topics-capped {
		t.Errorf("other: %v publishers, want %d", got, topics-capped)
	}
	if got := m.Value(t, "vw_relay_clients", "role", "publisher"); got != topics {
		t.Errorf("publishers: %v, want %d", got, topics)
	}
}
