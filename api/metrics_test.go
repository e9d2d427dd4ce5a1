package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/scrape"
	"github.com/vwlab/vw/internal/testrelay"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/ts"
)

// TestFeedInputMetrics POSTs a real ffmpeg recording with 100 bytes of
// garbage in front and one video packet cut out: /metrics counts exactly
// those bytes skipped, one resync and one continuity error, and a second,
// clean POST of the same feed adds nothing to them.
func TestFeedInputMetrics(t *testing.T) {
	rec, err := os.ReadFile("../ts/testdata/mpeg1-g5.ts")
	if err != nil {
		t.Fatal(err)
	}
	i := len(rec) / ts.PacketSize / 2 * ts.PacketSize
	for ts.PID(rec[i:]) != 0x100 || !ts.HasPayload(rec[i:]) || ts.PayloadUnitStart(rec[i:]) {
		i += ts.PacketSize
	}
	garbage := bytes.Repeat([]byte{0x55}, 100)
	body := append(append(append([]byte{}, garbage...), rec[:i]...), rec[i+ts.PacketSize:]...)

	f := newFixture(t, Config{}, rules.Config{})
	// A rule names the feed, so it is reported between its POSTs.
	if code, b := f.do(t, http.MethodPost, "/api/streams", `{"stream":"front","feeds":["video0"]}`); code != http.StatusOK {
		t.Fatalf("stream rule: %d %s", code, b)
	}
	post := func(b []byte) {
		resp, err := http.Post(f.url+"/ts/video0", "video/mp2t", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	check := func(when string) {
		t.Helper()
		m := scrape.Get(t, f.url+"/metrics", nil)
		for _, c := range []struct {
			name string
			want float64
		}{
			{"vw_stream_feed_skipped_bytes_total", float64(len(garbage))},
			{"vw_stream_feed_resyncs_total", 1},
			{"vw_stream_feed_continuity_errors_total", 1},
		} {
			if got := m.Value(t, c.name, "feed", "video0"); got != c.want {
				t.Errorf("%s: %s = %v, want %v", when, c.name, got, c.want)
			}
		}
	}
	post(body)
	check("after the damaged POST")
	post(rec)
	check("after a clean POST")
}

// TestStreamChangeMetrics: three rule changes that mute and unmute count
// three mute changes (a repeat counts none); the PMT versions counted are
// those a preview of the stream received: one when the feed's real ffmpeg
// recording went live, one when it fell silent.
func TestStreamChangeMetrics(t *testing.T) {
	rec, err := os.ReadFile("../ts/testdata/mpeg1-g5.ts")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Config{}, rules.Config{})
	for _, feeds := range []string{`"video0","audio0"`, `"video0"`, `"video0"`, `"audio0","video0"`, `"video0"`} {
		if code, b := f.do(t, http.MethodPost, "/api/streams", `{"stream":"front","feeds":[`+feeds+`]}`); code != http.StatusOK {
			t.Fatalf("stream rule: %d %s", code, b)
		}
	}
	p := f.preview(t, "front")
	resp, err := http.Post(f.url+"/ts/video0", "video/mp2t", bytes.NewReader(rec))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	var counted float64
	var sent []uint8
	ok := testutil.WaitFor(10*time.Second, func() bool {
		m := scrape.Get(t, f.url+"/metrics", nil)
		counted = m.Value(t, "vw_stream_stream_pmt_versions_total", "stream", "front")
		sent = tscheck.Walk(p.bytes()).PMTVersions
		return len(sent) == 2 && counted == 2
	})
	if !ok {
		t.Fatalf("PMT versions counted %v, the preview received %v; want 2 of each", counted, sent)
	}
	m := scrape.Get(t, f.url+"/metrics", nil)
	if got := m.Value(t, "vw_stream_stream_mute_changes_total", "stream", "front"); got != 3 {
		t.Fatalf("mute changes %v, want 3", got)
	}
}

// TestDestinationMetrics pushes a real recording, POSTed as a feed, to a
// relay: the bytes the destination counts sent are exactly those the relay
// received, and its last connection is stamped. When the relay restarts on
// the same address the destination counts one reconnect, stamped after the
// restart.
func TestDestinationMetrics(t *testing.T) {
	rec, err := os.ReadFile("../ts/testdata/mpeg1-g5.ts")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Config{}, rules.Config{})
	relay := testrelay.New(t, testrelay.Options{})
	began := time.Now()
	if code, b := f.do(t, http.MethodPost, "/api/destinations", `{"stream":"video0","destination":"`+relay.URL()+`","id":"0"}`); code != http.StatusOK {
		t.Fatalf("destination rule: %d %s", code, b)
	}
	scrapeOf := func() scrape.Families { return scrape.Get(t, f.url+"/metrics", nil) }
	up := func() bool {
		return scrapeOf().Value(t, "vw_stream_destination_up", "id", "0", "stream", "video0") == 1
	}
	testutil.Eventually(t, 10*time.Second, up, "the destination to connect")
	stamp := func() time.Time {
		s := scrapeOf().Value(t, "vw_stream_destination_last_connect_timestamp_seconds", "id", "0")
		return time.Unix(0, int64(s*1e9))
	}
	if at := stamp(); at.Before(began.Add(-time.Millisecond)) || at.After(time.Now()) {
		t.Errorf("last connect %v, want after %v", at, began)
	}

	resp, err := http.Post(f.url+"/ts/video0", "video/mp2t", bytes.NewReader(rec))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	received := func() (n int) {
		for _, m := range relay.Msgs() {
			n += len(m.Data)
		}
		return n
	}
	var sent float64
	ok := testutil.WaitFor(10*time.Second, func() bool {
		sent = scrapeOf().Value(t, "vw_stream_destination_sent_bytes_total", "id", "0")
		return sent == float64(len(rec)) && received() == len(rec)
	})
	if !ok {
		t.Fatalf("destination sent %v bytes, the relay received %d; the feed was %d", sent, received(), len(rec))
	}
	if got := scrapeOf().Value(t, "vw_stream_destination_reconnects_total", "id", "0"); got != 0 {
		t.Fatalf("reconnects %v before any outage", got)
	}
	// /status shows the same bytes, and how long the connection has been up.
	ds := destStatus(t, f, "0")
	if ds.Bytes != uint64(len(rec)) || ds.ConnectedSeconds <= 0 || ds.ConnectedSeconds > time.Since(began).Seconds() {
		t.Fatalf("/status: %d bytes, connected for %v s; want %d bytes, up to %v s", ds.Bytes, ds.ConnectedSeconds, len(rec), time.Since(began).Seconds())
	}

	addr := relay.Addr()
	relay.Stop()
	testutil.Eventually(t, 10*time.Second, func() bool { return !up() }, "the destination to see the relay go")
	if ds := destStatus(t, f, "0"); ds.ConnectedSeconds != 0 {
		t.Fatalf("/status: connected for %v s with the relay gone", ds.ConnectedSeconds)
	}
	restarted := time.Now()
	testrelay.New(t, testrelay.Options{Addr: addr})
	testutil.Eventually(t, 10*time.Second, up, "the destination to reconnect")
	if got := scrapeOf().Value(t, "vw_stream_destination_reconnects_total", "id", "0"); got != 1 {
		t.Fatalf("reconnects %v, want 1", got)
	}
	if at := stamp(); at.Before(restarted) {
		t.Fatalf("last connect %v, before the relay came back at %v", at, restarted)
	}
}

// destStatus returns destination id as GET /status shows it.
func destStatus(t *testing.T, f *fixture, id string) DestinationStatus {
	t.Helper()
	code, body := f.do(t, http.MethodGet, "/status", "")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("/status: %d %v %s", code, err, body)
	}
	for _, d := range st.Destinations {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf("/status has no destination %s: %s", id, body)
	return DestinationStatus{}
}
