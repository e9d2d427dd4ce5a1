package api

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/rules"
)

// send sends a request with headers (a "Host" entry sets the Host header)
// and returns the status and the trimmed body.
func (f *fixture) send(t *testing.T, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	var pairs []string
	for k, v := range hdr {
		pairs = append(pairs, k, v)
	}
	// An answer whose body breaks off still counts: its status is the point.
	resp, err := testutil.TryDo(testutil.Req{Method: method, URL: f.url + path, Body: body, Header: pairs})
	if err != nil && resp.Status == 0 {
		t.Fatal(err)
	}
	return resp.Status, strings.TrimSpace(resp.Body)
}

const (
	streamJSON = `{"stream":"front","feeds":["video0"]}`
	destJSON   = `{"stream":"front","destination":"ws://evil.example/in/x","id":"0"}`
	jsonCT     = "application/json"
	formCT     = "application/x-www-form-urlencoded"
)

// TestGuardRefusesBrowserPages sends what a web page open on the lab host
// could make a browser send, and what curl, ffmpeg and the preview page
// send: the first are refused with 403 or 415 and change nothing, the
// others pass.
func TestGuardRefusesBrowserPages(t *testing.T) {
	pages := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "page") })
	f := newFixture(t, Config{Player: pages, ListenHost: "127.0.0.1", AllowedHosts: []string{"lab1.example.org"}}, rules.Config{})
	own := f.url // http://127.0.0.1:port
	for _, c := range []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		reason                   string
	}{
		// DNS rebinding: the page's requests carry the attacker's name.
		{"rebound Host, read", "GET", "/api/destinations/all", "", map[string]string{"Host": "evil.example"}, 403, `Host \"evil.example\"`},
		{"rebound Host, write", "POST", "/api/streams", streamJSON, map[string]string{"Host": "evil.example:8888", "Content-Type": jsonCT}, 403, "VW_ALLOWED_HOSTS"},
		{"rebound Host, ingest", "POST", "/ts/video0", "x", map[string]string{"Host": "evil.example"}, 403, "Host"},
		{"rebound Host, page", "GET", "/play/video0", "", map[string]string{"Host": "evil.example"}, 403, "Host"},
		{"rebound Host, no route", "GET", "/nothing", "", map[string]string{"Host": "evil.example"}, 403, "Host"},
		{"other address", "GET", "/api/streams/all", "", map[string]string{"Host": "10.1.2.3:8888"}, 403, "Host"},
		// A "simple" cross-site POST: no preflight, so only vw can refuse it.
		{"cross-site text/plain", "POST", "/api/destinations", destJSON, map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403, "cross-origin"},
		{"cross-site JSON", "POST", "/api/destinations", destJSON, map[string]string{"Origin": "http://evil.example", "Content-Type": jsonCT}, 403, "cross-origin"},
		{"other port on loopback", "PUT", "/api/streams", streamJSON, map[string]string{"Origin": "http://127.0.0.1:3000", "Content-Type": jsonCT}, 403, "cross-origin"},
		{"opaque origin", "POST", "/api/streams", streamJSON, map[string]string{"Origin": "null", "Content-Type": jsonCT}, 403, "cross-origin"},
		{"cross-site delete", "DELETE", "/api/streams/all", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "Sec-Fetch-Site"},
		{"same-site delete", "DELETE", "/api/destinations/all", "", map[string]string{"Origin": "http://localhost:3000"}, 403, "cross-origin"},
		{"cross-site read", "GET", "/api/destinations/all", "", map[string]string{"Origin": "http://evil.example"}, 403, "cross-origin"},
		{"cross-site ingest", "POST", "/ts/video0", "x", map[string]string{"Origin": "http://evil.example"}, 403, "cross-origin"},
		{"cross-site ingest, no Origin", "POST", "/ts/video0", "x", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "Sec-Fetch-Site"},
		// Bodies a page can send without asking are never rules.
		{"text/plain from curl", "POST", "/api/streams", streamJSON, map[string]string{"Content-Type": "text/plain"}, 415, "application/json"},
		{"multipart", "POST", "/api/streams", streamJSON, map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 415, "application/json"},
		{"form from own page", "POST", "/api/streams", streamJSON, map[string]string{"Content-Type": formCT, "Origin": own}, 415, "application/json"},
		{"form, no-cors fetch", "POST", "/api/streams", streamJSON, map[string]string{"Content-Type": formCT, "Sec-Fetch-Mode": "no-cors"}, 415, "application/json"},
		{"untyped from a page", "PUT", "/api/streams", streamJSON, map[string]string{"Sec-Fetch-Site": "same-origin"}, 415, "application/json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.send(t, c.method, c.path, c.body, c.hdr)
			if status != c.status || !strings.Contains(body, `"error":`) || !strings.Contains(body, c.reason) {
				t.Fatalf("got %d %s, want %d mentioning %q", status, body, c.status, c.reason)
			}
		})
	}
	if n := len(f.rules.Streams()) + len(f.rules.Destinations()); n != 0 {
		t.Fatalf("refused requests stored %d rules", n)
	}

	for _, c := range []struct {
		name, method, path, body string
		hdr                      map[string]string
		want                     string
	}{
		{"healthcheck for any Host", "GET", "/healthcheck", "", map[string]string{"Host": "evil.example"}, `"ok"`},
		{"JSON from curl", "POST", "/api/streams", streamJSON, map[string]string{"Content-Type": jsonCT}, streamJSON},
		{"JSON with charset", "PUT", "/api/streams", streamJSON, map[string]string{"Content-Type": "application/json; charset=utf-8"}, streamJSON},
		{"curl -d (form type, no browser headers)", "POST", "/api/streams", streamJSON, map[string]string{"Content-Type": formCT}, streamJSON},
		{"untyped from a script", "POST", "/api/streams", streamJSON, nil, streamJSON},
		{"own page's JSON", "POST", "/api/streams", streamJSON, map[string]string{"Content-Type": jsonCT, "Origin": own, "Sec-Fetch-Site": "same-origin"}, streamJSON},
		{"address bar", "GET", "/api/streams/all", "", map[string]string{"Sec-Fetch-Site": "none"}, `{"front":["video0"]}`},
		{"localhost", "GET", "/api/streams/front", "", map[string]string{"Host": "localhost:8888"}, `["video0"]`},
		{"IPv6 loopback", "GET", "/api/streams/front", "", map[string]string{"Host": "[::1]:8888"}, `["video0"]`},
		{"VW_ALLOWED_HOSTS", "GET", "/api/streams/front", "", map[string]string{"Host": "LAB1.example.org:8888"}, `["video0"]`},
		{"page linked from another site", "GET", "/play/video0", "", map[string]string{"Sec-Fetch-Site": "cross-site"}, "page"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if status, body := f.send(t, c.method, c.path, c.body, c.hdr); status != 200 || body != c.want {
				t.Fatalf("got %d %s, want 200 %s", status, body, c.want)
			}
		})
	}
}

// TestGuardAnyAddress: listening on every address, a client that reached
// vw stream by one of its IP addresses passes; a name still has to be
// listed.
func TestGuardAnyAddress(t *testing.T) {
	f := newFixture(t, Config{ListenHost: "0.0.0.0"}, rules.Config{})
	if status, body := f.send(t, "GET", "/api/streams/all", "", map[string]string{"Host": "10.1.2.3:8888"}); status != 200 {
		t.Fatalf("by IP: %d %s", status, body)
	}
	if status, body := f.send(t, "GET", "/api/streams/all", "", map[string]string{"Host": "lab1.example.org"}); status != 403 {
		t.Fatalf("by an unlisted name: %d %s", status, body)
	}
}

// TestGuardIngest: a page of another origin cannot replace a live feed;
// ffmpeg's own POST carries on and the preview keeps receiving it.
func TestGuardIngest(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	p := f.preview(t, "cam")
	feed := f.post(t, "cam")
	feed.reach(t, p, 'A', "the feed's data did not arrive")
	for _, hdr := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Host": "evil.example"},
	} {
		if status, body := f.send(t, "POST", "/ts/cam", string(packetsOf('E', 10)), hdr); status != 403 {
			t.Fatalf("POST /ts/cam with %v: %d %s", hdr, status, body)
		}
	}
	feed.reach(t, p, 'B', "the feed stopped after the refused POSTs")
	if bytes.Contains(p.bytes(), []byte("EEEE")) {
		t.Fatal("a refused POST's data reached the feed")
	}
}

// TestGuardPreviewOrigin: the preview websocket opens from vw stream's own
// page and refuses a page of another origin at the handshake.
func TestGuardPreviewOrigin(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	u := "ws" + strings.TrimPrefix(f.url, "http") + "/ws/video0"
	c, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {f.url}})
	if err != nil {
		t.Fatalf("from its own origin: %v", err)
	}
	c.Close()
	for _, o := range []string{"http://evil.example", "http://127.0.0.1:1", "null"} {
		c, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {o}})
		if err == nil {
			c.Close()
			t.Fatalf("preview opened from %s", o)
		}
		if resp == nil || resp.StatusCode != 403 {
			t.Fatalf("preview from %s: %v %v, want 403", o, resp, err)
		}
	}
}
