package main

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/internal/testutil"
)

// Several relays behave as one: real `vw relay` processes on loopback, each
// joining the cluster through one seed, the way the README's "Several
// relays" deploys them.

// testCluster starts relays that share a cluster secret and env.
type testCluster struct {
	t      *testing.T
	secret string   // the cluster secret file
	env    []string // every relay's extra environment
	token  string   // an admin token for /stats, when env turns auth on
}

// clusterRelay is one relay of a test cluster, with the ports it keeps
// across a restart.
type clusterRelay struct {
	*proc
	name  string
	route string // host:port of its cluster listener
	seed  *clusterRelay
}

func newTestCluster(t *testing.T, env ...string) *testCluster {
	t.Helper()
	return &testCluster{t: t, secret: secretFile(t, "cluster-secret-for-the-e2e-tests-5b1e9d"), env: env}
}

// start runs relay name, joining seed (nil: it is the first).
func (c *testCluster) start(name string, seed *clusterRelay) *clusterRelay {
	c.t.Helper()
	r := &clusterRelay{name: name, seed: seed, route: "127.0.0.1:" + strconv.Itoa(freePort(c.t))}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(c.t))
	c.run(r, addr)
	return r
}

// run starts r's process on addr.
func (c *testCluster) run(r *clusterRelay, addr string) {
	c.t.Helper()
	env := append([]string{
		"VW_RELAY_LISTEN=" + addr,
		"VW_LOGLEVEL=info",
		"VW_RELAY_STATE=" + filepath.Join(c.t.TempDir(), "relay.json"),
		"VW_RELAY_NODE=" + r.name,
		"VW_RELAY_CLUSTER_LISTEN=" + r.route,
		"VW_RELAY_CLUSTER_SECRET_FILE=" + c.secret,
	}, c.env...)
	if r.seed != nil {
		env = append(env, "VW_RELAY_CLUSTER_ROUTES=nats://"+r.seed.route)
	}
	r.proc = startVW(c.t, addr, env, "relay")
	r.statsToken = c.token
}

// chain starts three relays, B joining through A and C through B, and
// waits until each sees the other two up.
func (c *testCluster) chain() (a, b, cc *clusterRelay) {
	c.t.Helper()
	a = c.start("a", nil)
	b = c.start("b", a)
	cc = c.start("c", b)
	waitMesh(c.t, a, b, cc)
	return a, b, cc
}

// restart brings a killed relay back on its ports.
func (c *testCluster) restart(r *clusterRelay) {
	c.t.Helper()
	c.run(r, r.addr)
}

// status is the relay's view of the cluster.
func (r *clusterRelay) status(t *testing.T) crossbar.ClusterStatus {
	t.Helper()
	st := relayStats(t, r.proc)
	if st.Cluster == nil {
		t.Fatalf("%s: /stats shows no cluster", r.name)
	}
	return *st.Cluster
}

// waitMesh waits until every relay sees every other up.
func waitMesh(t *testing.T, relays ...*clusterRelay) {
	t.Helper()
	for _, r := range relays {
		testutil.Eventually(t, 20*time.Second, func() bool {
			up := 0
			for _, p := range r.status(t).Peers {
				if p.Up {
					up++
				}
			}
			return up == len(relays)-1
		}, "%s does not see the %d others up: %+v", r.name, len(relays)-1, r.status(t).Peers)
	}
}

// waitWatching waits until r's view of the cluster shows each named relay
// taking topic with at least the clients given (viewers, or peers on a
// bidirectional route). A relay reports a topic as watched only after
// subscribing, so from then on r's server forwards the topic to it.
func waitWatching(t *testing.T, r *clusterRelay, topic string, clients map[string]int) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() bool {
		for _, ct := range r.status(t).Topics {
			if ct.Name != topic {
				continue
			}
			ok := 0
			for _, rt := range ct.Relays {
				if n, want := clients[rt.Node]; want && rt.Watching && rt.Viewers+rt.Peers >= n {
					ok++
				}
			}
			return ok == len(clients)
		}
		return false
	}, "%s never saw %v watching %s: %+v", r.name, clients, topic, r.status(t).Topics)
}

func wsURL(r *clusterRelay, path string) string { return "ws://" + r.addr + path }

// stampedMsg is message i of a stream: its number, then padding.
func stampedMsg(i, size int) []byte {
	b := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(b, uint64(i))
	return b
}

// readStream reads stamped messages until a text "end", and returns an
// error at the first one out of order or missing.
func readStream(c *websocket.Conn, n int) error {
	for want := 0; ; want++ {
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		mt, b, err := c.ReadMessage()
		switch {
		case err != nil:
			return fmtErr("waiting for message %d: %v", want, err)
		case mt == websocket.TextMessage && string(b) == "end":
			if want != n {
				return fmtErr("\"end\" after %d messages, want %d", want, n)
			}
			return nil
		case mt != websocket.BinaryMessage || len(b) < 8:
			return fmtErr("message %d: type %d, %d bytes", want, mt, len(b))
		}
		if got := int(binary.BigEndian.Uint64(b)); got != want {
			return fmtErr("got message %d, want %d", got, want)
		}
	}
}

// readAllStreams runs readStream on every conn and fails on any error.
func readAllStreams(t *testing.T, conns []*websocket.Conn, n int) func() {
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := readStream(c, n); err != nil {
				errs <- fmtErr("viewer %d: %v", i, err)
			}
		}()
	}
	return func() {
		t.Helper()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// publish sends n stamped messages of size bytes, one per pace, then "end".
func publish(t *testing.T, pub *websocket.Conn, n, size int, pace time.Duration) {
	t.Helper()
	publishAnd(t, pub, n, size, pace, nil)
}

// publishAnd is publish calling at(i) after message i, if at is set.
func publishAnd(t *testing.T, pub *websocket.Conn, n, size int, pace time.Duration, at func(i int)) {
	t.Helper()
	tick := time.NewTicker(max(pace, time.Microsecond))
	defer tick.Stop()
	for i := range n {
		_ = pub.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := pub.WriteMessage(websocket.BinaryMessage, stampedMsg(i, size)); err != nil {
			t.Fatalf("publishing message %d: %v", i, err)
		}
		if at != nil {
			at(i)
		}
		if pace > 0 {
			<-tick.C
		}
	}
	if err := pub.WriteMessage(websocket.TextMessage, []byte("end")); err != nil {
		t.Fatal(err)
	}
}

// TestCluster: three relays, B joining through A and C through B. A
// stream published on A reaches 100 viewers split over B and C, every
// message in order; a viewer on B that stops reading is dropped by B while
// C's viewers get everything; a bidirectional route is N:N across the
// three; the control API reached through B drives a vw stream connected to
// A; and a relay without the cluster secret is kept out. The subtests share
// one cluster because starting three relays is the expensive part.
func TestCluster(t *testing.T) {
	a, b, cc := newTestCluster(t).chain()

	t.Run("100 viewers on B and C", func(t *testing.T) {
		var views []*websocket.Conn
		for i := range 100 {
			r := b
			if i%2 == 1 {
				r = cc
			}
			views = append(views, testutil.Dial(t, wsURL(r, "/out/lab1/cam"), nil))
		}
		waitWatching(t, a, "/out/lab1/cam", map[string]int{"b": 50, "c": 50})
		done := readAllStreams(t, views, 500)
		// 2 KB every 5 ms: about what vw stream sends of a 3 Mbit/s stream.
		publish(t, testutil.Dial(t, wsURL(a, "/in/lab1/cam"), nil), 500, 2048, 5*time.Millisecond)
		done()
	})

	t.Run("a stalled viewer on B", func(t *testing.T) {
		stalled := testutil.Dial(t, wsURL(b, "/out/lab1/big"), nil)
		views := []*websocket.Conn{testutil.Dial(t, wsURL(cc, "/out/lab1/big"), nil), testutil.Dial(t, wsURL(cc, "/out/lab1/big"), nil)}
		waitWatching(t, a, "/out/lab1/big", map[string]int{"b": 1, "c": 2})
		pub := testutil.Dial(t, wsURL(a, "/in/lab1/big"), nil)
		done := readAllStreams(t, views, 40)
		// 40 MB, far past B's 8 MiB per viewer, at 25 MB/s: a pace C's
		// viewers keep (8 MiB behind drops them too) on a busy machine.
		publish(t, pub, 40, 1<<20, 40*time.Millisecond)
		done()
		testutil.Eventually(t, 15*time.Second, func() bool {
			ts, _ := topicStats(t, b.proc, "out/lab1/big")
			return ts.DroppedViewers == 1
		}, "B kept a viewer that read nothing of 40 MB")
		_ = stalled
	})

	t.Run("N:N across three relays", func(t *testing.T) {
		var peers []*websocket.Conn
		for _, r := range []*clusterRelay{a, b, cc} {
			peers = append(peers, testutil.Dial(t, wsURL(r, "/lab1/chat"), nil), testutil.Dial(t, wsURL(r, "/lab1/chat"), nil))
		}
		for _, r := range []*clusterRelay{a, b, cc} {
			others := map[string]int{}
			for _, o := range []*clusterRelay{a, b, cc} {
				if o != r {
					others[o.name] = 2
				}
			}
			waitWatching(t, r, "/lab1/chat", others)
		}
		testutil.HearEachOther(t, peers, 10*time.Second)
	})

	t.Run("the control API through B", func(t *testing.T) {
		stream := streamProc(t, "VW_API="+wsURL(a, "/lab1/api"))
		op := testutil.Dial(t, wsURL(b, "/lab1/api"), nil)
		waitWatching(t, b, "/lab1/api", map[string]int{"a": 1})
		waitWatching(t, a, "/lab1/api", map[string]int{"b": 1})
		ask := func(cmd, want string) {
			t.Helper()
			if err := op.WriteMessage(websocket.TextMessage, []byte(cmd)); err != nil {
				t.Fatal(err)
			}
			_ = op.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, m, err := op.ReadMessage()
			if err != nil || !strings.Contains(string(m), want) {
				t.Fatalf("%s through B: %q %v, want %s", cmd, m, err, want)
			}
		}
		ask(`{"verb":"healthcheck"}`, `"healthcheck":"ok"`)
		ask(`{"verb":"add","what":"stream","rule":{"stream":"front","feeds":["video0","audio0"]}}`, `"front"`)
		if st, body := httpDo(t, http.MethodGet, stream.baseURL+"/api/streams/all", ""); st != 200 || !strings.Contains(body, `"front":["video0","audio0"]`) {
			t.Fatalf("vw stream's rules after the command through B: %d %s", st, body)
		}
	})

	t.Run("a relay without the secret", func(t *testing.T) {
		bad := newTestCluster(t)
		bad.secret = secretFile(t, "not-the-cluster-secret-0123456789-abcdef")
		x := bad.start("x", a)
		if testutil.WaitFor(3*time.Second, func() bool {
			return len(x.status(t).Peers) > 0 || len(a.status(t).Peers) > 2
		}) {
			t.Fatalf("a relay with another secret joined: x sees %+v, a sees %+v", x.status(t).Peers, a.status(t).Peers)
		}
	})
}

func fmtErr(format string, args ...any) error { return fmt.Errorf(format, args...) }
