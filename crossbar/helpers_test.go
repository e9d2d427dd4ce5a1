package crossbar

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// relay is a crossbar server on a loopback port.
type relay struct {
	*Server
	http *httptest.Server
	ws   string // ws://127.0.0.1:port
}

// newServer is New with its own hub, failing the test on an error.
func newServer(t testing.TB, cfg Config, log *logrus.Entry) *Server {
	t.Helper()
	s, err := New(cfg, hub.New(), log)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startRelay(t testing.TB, cfg Config) *relay {
	t.Helper()
	s := newServer(t, cfg, testutil.Log(t))
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return &relay{Server: s, http: hs, ws: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

// dial opens a websocket to path, offering the subprotocols.
func (r *relay) dial(t testing.TB, path string, protos ...string) *websocket.Conn {
	t.Helper()
	c, err := r.dialErr(path, nil, protos...)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (r *relay) dialErr(path string, netDial func(network, addr string) (net.Conn, error), protos ...string) (*websocket.Conn, error) {
	d := websocket.Dialer{Subprotocols: protos, HandshakeTimeout: 5 * time.Second, NetDial: netDial}
	c, resp, err := d.Dial(r.ws+path, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	return c, err
}

// read returns the next message, failing the test after 5 s.
func read(t testing.TB, c *websocket.Conn) (int, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reading from %s: %v", c.LocalAddr(), err)
	}
	return mt, b
}

func send(t testing.TB, c *websocket.Conn, mt int, b []byte) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(mt, b); err != nil {
		t.Fatalf("sending: %v", err)
	}
}

// topic returns the stats of a topic, or a zero value if it does not exist.
func (r *relay) topic(name string) TopicReport {
	for _, ts := range r.Stats().Topics {
		if ts.Name == name {
			return ts
		}
	}
	return TopicReport{}
}

// client returns the stats of the n-th client (by age) of a topic with the
// given role.
func (r *relay) client(name string, role Role, n int) ClientStats {
	for _, c := range r.topic(name).Clients {
		if c.Role == role {
			if n == 0 {
				return c
			}
			n--
		}
	}
	return ClientStats{}
}

// waitClients waits until a topic has the given numbers of publishers,
// viewers and peers connected (handshakes done on the relay's side).
func (r *relay) waitClients(t testing.TB, name string, pubs, viewers, peers int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() bool {
		ts := r.topic(name)
		subs := 0
		if hs := r.hub.Stats(); len(hs) > 0 {
			for _, h := range hs {
				if h.Name == name {
					subs = h.Subscribers
				}
			}
		}
		return ts.Publishers == pubs && ts.Viewers == viewers && ts.Peers == peers && subs == viewers+peers
	}, "topic %s: want %d publishers, %d viewers, %d peers; have %+v", name, pubs, viewers, peers, r.topic(name))
}

// getJSON fetches url into v (unless v is nil) and returns the answer.
func getJSON(t testing.TB, url string, accept string, v any) testutil.Resp {
	t.Helper()
	var hdr []string
	if accept != "" {
		hdr = []string{"Accept", accept}
	}
	resp := testutil.Do(t, testutil.Req{URL: url, Header: hdr})
	if v != nil {
		if err := json.Unmarshal([]byte(resp.Body), v); err != nil {
			t.Fatalf("GET %s: decoding JSON: %v", url, err)
		}
	}
	return resp
}

// handshake sends a websocket handshake by hand and returns the response,
// for the status and body of a refusal.
func (r *relay) handshake(t testing.TB, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("handshake %s: %v", path, err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func jsonBody(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

func getBody(t testing.TB, url string) string {
	t.Helper()
	resp := testutil.Do(t, testutil.Req{URL: url})
	if resp.Status != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.Status)
	}
	return resp.Body
}

// waitGone waits until a topic (an /out/ or bidirectional path) has no
// clients.
func (r *relay) waitGone(t testing.TB, topic string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() bool { return len(r.topic(topic).Clients) == 0 },
		"%s still has clients", topic)
}
