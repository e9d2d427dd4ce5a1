package cluster

import (
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/ts"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testSecret = []byte("cluster-test-secret-0123456789abcdef")

// node is one relay of an in-process cluster: a real crossbar relay on a
// loopback port, joined by a real embedded NATS server.
type node struct {
	name  string
	relay *crossbar.Server
	hub   *hub.Hub
	cl    *Cluster
	ws    string
	stop  func()
}

// startNode starts a relay named name whose cluster joins seeds.
func startNode(t *testing.T, name string, rcfg crossbar.Config, seeds ...*node) *node {
	t.Helper()
	cfg := Config{Node: name, Listen: "127.0.0.1:0", Secret: testSecret, Linger: 300 * time.Millisecond, Report: 200 * time.Millisecond}
	for _, s := range seeds {
		cfg.Routes = append(cfg.Routes, "nats://"+s.cl.ClusterAddr().String())
	}
	return startNodeCfg(t, cfg, rcfg)
}

func startNodeCfg(t *testing.T, cfg Config, rcfg crossbar.Config) *node {
	t.Helper()
	log := testutil.Log(t).WithField("node", cfg.Node)
	cl, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	rcfg.Cluster = cl
	h := hub.New()
	relay, err := crossbar.New(rcfg, h, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(relay, rcfg.Auth); err != nil {
		relay.Close()
		t.Fatal(err)
	}
	hs := httptest.NewServer(relay.Handler())
	n := &node{name: cfg.Node, relay: relay, hub: h, cl: cl, ws: "ws" + strings.TrimPrefix(hs.URL, "http")}
	stopped := false
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		if t.Failed() {
			k := &cl.counters
			t.Logf("%s's cluster counted: sent %d, unwatched %d, dropped %d, received %d, gaps %d, bad %d",
				n.name, k.sent.Load(), k.unwatched.Load(), k.dropped.Load(), k.received.Load(), k.gaps.Load(), k.bad.Load())
		}
		relay.Close()
		cl.Close()
		hs.Close()
	}
	t.Cleanup(n.stop)
	return n
}

// mesh starts n relays, each joining the first only, and waits until every
// one sees every other.
func mesh(t *testing.T, rcfg crossbar.Config, names ...string) []*node {
	t.Helper()
	return meshWith(t, func() crossbar.Config { return rcfg }, names...)
}

// meshWith is mesh with each relay's config from rcfg.
func meshWith(t *testing.T, rcfg func() crossbar.Config, names ...string) []*node {
	t.Helper()
	var nodes []*node
	for i, name := range names {
		if i == 0 {
			nodes = append(nodes, startNode(t, name, rcfg()))
			continue
		}
		nodes = append(nodes, startNode(t, name, rcfg(), nodes[0]))
	}
	for _, n := range nodes {
		testutil.Eventually(t, 10*time.Second, func() bool { return upPeers(n) == len(nodes)-1 }, "%s sees %d peers up, want %d", n.name, upPeers(n), len(nodes)-1)
	}
	return nodes
}

func upPeers(n *node) int {
	k := 0
	for _, p := range n.cl.Status().Peers {
		if p.Up {
			k++
		}
	}
	return k
}

// remoteInterest is how many other servers subscribe to topic, as n's
// embedded server knows.
func remoteInterest(n *node, topic string) int {
	return n.srvInterest(topic)
}

// subscribers counts the subscriptions of n's hub topic: a client counts
// once its relay has subscribed it, which is after its handshake answers.
func (n *node) subscribers(topic string) int {
	for _, st := range n.hub.Stats() {
		if st.Name == topic {
			return st.Subscribers
		}
	}
	return 0
}

func (n *node) srvInterest(topic string) int {
	return n.cl.srv.GlobalAccount().Interest(topicSubject(topic))
}

func dial(t *testing.T, n *node, path string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(n.ws+path, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		t.Fatalf("dial %s%s: %v", n.ws, path, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// view dials a viewer of topic on n and waits until n's hub has subscribed
// it. The relay subscribes a client after its handshake answers, and its
// cluster subscribes the topic as soon as the client is counted, so the
// interest can reach another relay before the viewer is in the hub: a
// message published in between rightly never reaches it.
func view(t *testing.T, n *node, topic string) *websocket.Conn {
	t.Helper()
	before := n.subscribers(topic)
	c := dial(t, n, strings.ReplaceAll(topic, " ", "%20"))
	testutil.Eventually(t, 5*time.Second, func() bool { return n.subscribers(topic) > before }, "%s subscribes its viewer of %s", n.name, topic)
	return c
}

// subscribedHere reports whether n's cluster counts its subscription to
// topic as its own, which it does once the server has it: until then n
// cannot tell its own interest from another relay's, and publishes.
func subscribedHere(n *node, topic string) bool {
	_, ok := n.cl.own.Load(topicSubject(topic))
	return ok
}

// stamped is a binary message carrying its number, padded to size.
func stamped(i, size int) []byte {
	b := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(b, uint64(i))
	return b
}

// readAll reads n stamped messages and fails on any out of order.
func readStamped(t *testing.T, c *websocket.Conn, from, n int) {
	t.Helper()
	for want := from; want < from+n; want++ {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		mt, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for message %d: %v", want, err)
		}
		if mt != websocket.BinaryMessage || len(b) < 8 {
			t.Fatalf("message %d: type %d, %d bytes", want, mt, len(b))
		}
		if got := int(binary.BigEndian.Uint64(b)); got != want {
			t.Fatalf("got message %d, want %d", got, want)
		}
	}
}

// A stream published on A reaches viewers on B and C, every message in
// order, with its type; and one published on C reaches viewers on A.
func TestStreamAcrossRelays(t *testing.T) {
	nodes := mesh(t, crossbar.Config{}, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	vb := view(t, b, "/out/lab1.cam")
	vc := view(t, c, "/out/lab1.cam")
	testutil.Eventually(t, 5*time.Second, func() bool { return remoteInterest(a, "/out/lab1.cam") == 2 }, "A learns that B and C watch")
	pub := dial(t, a, "/in/lab1.cam")
	for i := range 200 {
		if err := pub.WriteMessage(websocket.BinaryMessage, stamped(i, 1500)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.WriteMessage(websocket.TextMessage, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*websocket.Conn{vb, vc} {
		readStamped(t, v, 0, 200)
		mt, msg, err := v.ReadMessage()
		if err != nil || mt != websocket.TextMessage || string(msg) != "bye" {
			t.Fatalf("last message: %d %q %v, want text \"bye\"", mt, msg, err)
		}
	}
}

// Bidirectional routes are N:N across relays: a peer's message reaches every
// other peer of the path on every relay, once, and never comes back.
func TestBidirectionalAcrossRelays(t *testing.T) {
	nodes := mesh(t, crossbar.Config{}, "a", "b", "c")
	var peers []*websocket.Conn
	for _, n := range nodes {
		for range 2 {
			peers = append(peers, dial(t, n, "/lab1/api"))
		}
	}
	for _, n := range nodes {
		testutil.Eventually(t, 5*time.Second, func() bool { return n.srvInterest("/lab1/api") == 3 }, "%s learns every relay's interest", n.name)
		// A peer's handshake answers before its relay subscribes it: a
		// message sent before then would pass it by.
		testutil.Eventually(t, 5*time.Second, func() bool { return n.subscribers("/lab1/api") == 2 }, "%s subscribes both its peers", n.name)
	}
	for i, p := range peers {
		if err := p.WriteMessage(websocket.TextMessage, []byte{byte('A' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range peers {
		got := map[byte]int{}
		for range len(peers) - 1 {
			_ = p.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, b, err := p.ReadMessage()
			if err != nil {
				t.Fatalf("peer %d: %v after %v", i, err, got)
			}
			got[b[0]]++
		}
		for j := range peers {
			want := 1
			if j == i {
				want = 0
			}
			if got[byte('A'+j)] != want {
				t.Errorf("peer %d got peer %d's message %d times, want %d", i, j, got[byte('A'+j)], want)
			}
		}
		// Nothing more: no echo, no duplicate.
		_ = p.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, b, err := p.ReadMessage(); err == nil {
			t.Errorf("peer %d got an extra message %q", i, b)
		}
	}
}

// A relay takes a topic from the others only while it has local viewers,
// and Linger after; with nobody watching elsewhere, the publisher's relay
// publishes nothing at all.
func TestInterestFollowsViewers(t *testing.T) {
	nodes := mesh(t, crossbar.Config{}, "a", "b")
	a, b := nodes[0], nodes[1]
	// A viewer on a itself: a subscribes, but nobody else does.
	local := view(t, a, "/out/x")
	testutil.Eventually(t, 5*time.Second, func() bool { return a.srvInterest("/out/x") == 1 && subscribedHere(a, "/out/x") }, "a subscribes for its own viewer")
	pub := dial(t, a, "/in/x")
	for i := range 50 {
		if err := pub.WriteMessage(websocket.BinaryMessage, stamped(i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	readStamped(t, local, 0, 50)
	if s := a.cl.Status().Sent; s != 0 {
		t.Errorf("A published %d messages with no other relay watching", s)
	}
	v := dial(t, b, "/out/x")
	testutil.Eventually(t, 5*time.Second, func() bool { return remoteInterest(a, "/out/x") == 2 }, "B subscribes while it has a viewer")
	v.Close()
	start := time.Now()
	testutil.Eventually(t, 5*time.Second, func() bool { return remoteInterest(a, "/out/x") == 1 }, "B unsubscribes after the linger")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("B unsubscribed %v after its last viewer left, before the linger", d)
	}
}

// Topic paths that differ only where a subject would not (dots, wildcards,
// spaces) stay apart.
func TestTopicsWithSubjectCharacters(t *testing.T) {
	nodes := mesh(t, crossbar.Config{}, "a", "b")
	a, b := nodes[0], nodes[1]
	names := []string{"/out/a.b", "/out/a/b", "/out/*", "/out/>", "/out/a b", "/out/" + strings.Repeat("x", 600), "/out/" + strings.Repeat("x", 601)}
	views := map[string]*websocket.Conn{}
	for _, n := range names {
		views[n] = view(t, b, n)
	}
	for _, n := range names {
		testutil.Eventually(t, 5*time.Second, func() bool { return remoteInterest(a, n) == 1 }, "interest in %q", n)
	}
	for i, n := range names {
		p := dial(t, a, "/in/"+strings.ReplaceAll(strings.TrimPrefix(n, "/out/"), " ", "%20"))
		if err := p.WriteMessage(websocket.BinaryMessage, stamped(i, 8)); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range names {
		readStamped(t, views[n], i, 1)
	}
	for _, n := range names {
		_ = views[n].SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, b, err := views[n].ReadMessage(); err == nil {
			t.Errorf("%q got another topic's message %d", n, binary.BigEndian.Uint64(b))
		}
	}
}

// A relay that starts taking a running MPEG-TS stream joins it at a
// keyframe: its viewer's first bytes are the PAT, the PMT and a keyframe's
// PES, and no PID starts mid-PES.
func TestJoiningRelayStartsAtAKeyframe(t *testing.T) {
	msgs := avStream(t)
	nodes := mesh(t, crossbar.Config{}, "a", "b")
	a, b := nodes[0], nodes[1]
	pub := dial(t, a, "/in/lab1/cam")
	for _, m := range msgs[:40] {
		if err := pub.WriteMessage(websocket.BinaryMessage, m); err != nil {
			t.Fatal(err)
		}
	}
	// Those went nowhere: nobody watched. b begins watching mid-stream.
	testutil.Eventually(t, 5*time.Second, func() bool { return a.cl.counters.unwatched.Load() == 40 }, "a passes the first messages by")
	v := view(t, b, "/out/lab1/cam")
	testutil.Eventually(t, 5*time.Second, func() bool { return remoteInterest(a, "/out/lab1/cam") == 1 }, "b's interest reaches a")
	var sent []byte
	for _, m := range msgs[40:] {
		sent = append(sent, m...)
		if err := pub.WriteMessage(websocket.BinaryMessage, m); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	for len(got) < len(sent)/2 {
		_ = v.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, m, err := v.ReadMessage()
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, m...)
	}
	if ts.PID(got) != ts.PIDPAT {
		t.Errorf("b's viewer starts with PID %#x, want the PAT", ts.PID(got))
	}
	rep := walkPES(got)
	if len(rep.startsMidPES) > 0 {
		t.Errorf("PIDs %#x start mid-PES at b's viewer", rep.startsMidPES)
	}
	if key, _ := ts.Keyframe(ts.FamilyMPEG1, rep.firstVideo); !key {
		t.Error("b's viewer's first video PES is not a keyframe")
	}
	if g := b.cl.Status().Gaps; g != 1 {
		t.Errorf("b counted %d gaps, want 1 (joining mid-stream)", g)
	}
}

// /stats shows the cluster to an operator: this relay's name, the others
// up, and which relay holds which topic's clients, as JSON and as a page.
func TestStatsShowTheCluster(t *testing.T) {
	nodes := mesh(t, crossbar.Config{}, "a", "b")
	a, b := nodes[0], nodes[1]
	dial(t, b, "/out/lab1/cam")
	dial(t, b, "/in/lab1/cam")
	testutil.Eventually(t, 5*time.Second, func() bool {
		for _, ct := range a.relay.Stats().Cluster.Topics {
			if ct.Name == "/out/lab1/cam" && len(ct.Relays) == 1 && ct.Relays[0].Node == "b" && ct.Relays[0].Viewers == 1 && ct.Relays[0].Publishers == 1 {
				return true
			}
		}
		return false
	}, "a's /stats does not show b's publisher and viewer")
	resp, err := http.Get(a.http() + "/stats?format=html")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"this relay is a", "<td>b</td><td>up</td>", "<td>/out/lab1/cam</td><td>b</td>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the stats page lacks %q", want)
		}
	}
	// The index lists the stream published on b.
	resp, err = http.Get(a.http() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	index, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(index), "lab1/cam") {
		t.Errorf("a's index does not list the stream published on b:\n%s", index)
	}
}
