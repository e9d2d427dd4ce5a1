package rwc

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"go.uber.org/goleak"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testrelay"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/reconws"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 5 * time.Second

type fixture struct {
	t   *testing.T
	h   *hub.Hub
	r   *RWC
	dir string
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	h := hub.New()
	if cfg.Recordings == "" {
		cfg.Recordings = filepath.Join(t.TempDir(), "recordings")
	}
	r := newRWC(t, cfg, h, testutil.Log(t))
	t.Cleanup(r.Close)
	return &fixture{t: t, h: h, r: r, dir: cfg.Recordings}
}

// newRWC returns New(cfg, h, log), failing the test on an error.
func newRWC(t testing.TB, cfg Config, h *hub.Hub, log *logrus.Entry) *RWC {
	t.Helper()
	r, err := New(cfg, h, log)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestConfig: a negative setting is refused by name, at New.
func TestConfig(t *testing.T) {
	_, err := New(Config{BackoffMin: -time.Millisecond}, hub.New(), testutil.Log(t))
	if err == nil || !strings.Contains(err.Error(), "BackoffMin is -1ms") {
		t.Fatalf("negative BackoffMin: %v", err)
	}
}

func (f *fixture) set(rule Rule) {
	f.t.Helper()
	if err := f.r.Set(rule); err != nil {
		f.t.Fatalf("Set(%+v): %v", rule, err)
	}
}

// waitConnected waits until destination id streams to url.
func (f *fixture) waitConnected(id, url string) {
	f.t.Helper()
	testutil.Eventually(f.t, wait, func() bool {
		s, _ := f.r.Stats(id)
		return s.URL == url && s.Connected
	}, "destination %s never connected to %s", id, url)
}

func (f *fixture) pub(topic string, m testrelay.Msg) {
	f.h.Publish(topic, &hub.Message{Data: m.Data, Text: m.Text})
}

func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "ws://" + addr + "/in/nobody"
}

func seq(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

func seqs(ms []testrelay.Msg) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = int(binary.BigEndian.Uint32(m.Data))
	}
	return out
}

func sameMsgs(t *testing.T, got, want []testrelay.Msg) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Text != want[i].Text || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Errorf("message %d: got text=%v %q, want text=%v %q", i, got[i].Text, trim(got[i].Data), want[i].Text, trim(want[i].Data))
		}
	}
}

func trim(b []byte) []byte { return b[:min(len(b), 32)] }

// The topic's messages reach the relay with their type; the token is on the
// handshake; what the relay sends comes back into the topic, and not back to
// the relay.
func TestDataFlowsBothWays(t *testing.T) {
	rl := testrelay.New(t, testrelay.Options{})
	f := newFixture(t, Config{})
	f.set(Rule{Stream: "cam", Destination: rl.URL(), ID: "0", Token: "tok.123"})
	f.waitConnected("0", rl.URL())
	if got := rl.Headers()[0].Get("Authorization"); got != "Bearer tok.123" {
		t.Errorf("Authorization = %q, want %q", got, "Bearer tok.123")
	}

	want := []testrelay.Msg{
		{Data: bytes.Repeat([]byte{0x47, 1, 2, 3}, 47)},
		{Data: []byte(`{"healthcheck":"ok"}`), Text: true},
		{Data: bytes.Repeat([]byte{0x47}, 70000)},
	}
	for _, m := range want {
		f.pub("cam", m)
	}
	testutil.Eventually(t, wait, func() bool { return rl.Count() == len(want) }, "relay got %d of %d", rl.Count(), len(want))
	sameMsgs(t, rl.Msgs(), want)

	listener := f.h.Subscribe("cam", hub.SubConfig{})
	defer listener.Close()
	testutil.Eventually(t, wait, func() bool { return rl.Conns() == 1 }, "relay lost its client")
	cmd := testrelay.Msg{Data: []byte(`{"verb":"healthcheck"}`), Text: true}
	rl.Send(cmd)
	select {
	case m := <-listener.C():
		if !m.Text || string(m.Data) != string(cmd.Data) || m.From == 0 {
			t.Errorf("topic got %+v, want the relay's text message from the destination", m)
		}
	case <-time.After(wait):
		t.Fatal("the relay's message never reached the topic")
	}
	// Had the destination heard its own remote's message, it would have
	// forwarded it before this marker.
	marker := testrelay.Msg{Data: []byte("marker")}
	f.pub("cam", marker)
	testutil.Eventually(t, wait, func() bool { return rl.Count() == len(want)+1 }, "marker never arrived")
	sameMsgs(t, rl.Msgs(), append(want, marker))
}

// The relay dies and comes back on the same address: the destination is
// streaming again after at most one more dial than the one its current
// backoff step was waiting for.
func TestReconnect(t *testing.T) {
	rl := testrelay.New(t, testrelay.Options{})
	addr := rl.Addr()
	f := newFixture(t, Config{})
	f.set(Rule{Stream: "cam", Destination: rl.URL(), ID: "0"})
	f.waitConnected("0", rl.URL())
	f.pub("cam", testrelay.Msg{Data: []byte("before")})
	testutil.Eventually(t, wait, func() bool { return rl.Count() == 1 }, "no data before the outage")

	rl.Stop()
	testutil.Eventually(t, wait, func() bool { s, _ := f.r.Stats("0"); return s.Failures >= 2 },
		"destination did not notice the relay was gone")
	rl2 := testrelay.New(t, testrelay.Options{Addr: addr})
	before, _ := f.r.Stats("0")
	f.waitConnected("0", rl.URL())
	after, _ := f.r.Stats("0")
	if extra := after.Failures - before.Failures; extra > 1 {
		t.Errorf("%d dials failed after the relay was back; want at most the one in flight", extra)
	}
	if step := reconws.Step(reconws.DefaultBackoffMin, reconws.DefaultBackoffMax, int(after.Failures)); after.Backoff > step {
		t.Errorf("waited %v before the last dial, more than the step %v", after.Backoff, step)
	}
	f.pub("cam", testrelay.Msg{Data: []byte("after")})
	testutil.Eventually(t, wait, func() bool { return rl2.Count() == 1 }, "no data after reconnecting")
	sameMsgs(t, rl2.Msgs(), []testrelay.Msg{{Data: []byte("after")}})
}

// Swapping the URL mid-flow loses and repeats nothing: the old relay gets a
// prefix of the sequence, then a close frame, the new one the rest. The old
// relay is made to stop reading around the swap, so that the old client
// holds a backlog that it must flush before closing.
func TestHotSwap(t *testing.T) {
	r1, r2 := testrelay.New(t, testrelay.Options{}), testrelay.New(t, testrelay.Options{})
	f := newFixture(t, Config{Queue: 1024})
	f.set(Rule{Stream: "cam", Destination: r1.URL(), ID: "0"})
	f.waitConnected("0", r1.URL())

	total := func() int { return r1.Count() + r2.Count() }
	n := 0
	send := func(size int) {
		data := make([]byte, size)
		copy(data, seq(n))
		f.pub("cam", testrelay.Msg{Data: data})
		n++
	}
	paced := func(count int) {
		for end := n + count; n < end; {
			send(4)
			// A window well inside the queues: the test must see the
			// swap, not the drop policy.
			testutil.Eventually(t, wait, func() bool { return total() >= n-64 }, "flow stalled at %d of %d", total(), n)
		}
	}
	paced(300)
	r1.Pause()
	f.set(Rule{Stream: "cam", Destination: r2.URL(), ID: "0"})
	// Megabytes more than the socket buffers hold, queued while the new
	// relay is dialled (some may already go to it: any split is fine).
	for range 200 {
		send(64 << 10)
	}
	f.waitConnected("0", r2.URL())
	r1.Resume()
	paced(300)
	testutil.Eventually(t, wait, func() bool { return total() == n }, "relays got %d of %d", total(), n)

	got := append(seqs(r1.Msgs()), seqs(r2.Msgs())...)
	for i, s := range got {
		if s != i {
			t.Fatalf("sequence broken at %d: got %d (old relay %d, new relay %d messages)", i, s, r1.Count(), r2.Count())
		}
	}
	if r1.Count() < 300 || r2.Count() < 300 {
		t.Errorf("old relay got %d, new relay %d: the swap was not mid-flow", r1.Count(), r2.Count())
	}
	testutil.Eventually(t, wait, func() bool { return len(r1.Closes()) == 1 }, "old relay got no close frame")
	if c := r1.Closes()[0]; c != websocket.CloseNormalClosure {
		t.Errorf("old relay's close code %d, want %d", c, websocket.CloseNormalClosure)
	}
	if h := len(r2.Headers()); h != 1 {
		t.Errorf("new relay saw %d handshakes, want 1", h)
	}
}

// A swap to a URL that never answers does not keep feeding the old place:
// after SwapTimeout the old connection is closed and the new one retried.
func TestSwapToDeadURL(t *testing.T) {
	r1 := testrelay.New(t, testrelay.Options{})
	dead := closedURL(t)
	f := newFixture(t, Config{SwapTimeout: 50 * time.Millisecond})
	f.set(Rule{Stream: "cam", Destination: r1.URL(), ID: "0"})
	f.waitConnected("0", r1.URL())
	f.set(Rule{Stream: "cam", Destination: dead, ID: "0"})
	testutil.Eventually(t, wait, func() bool { return len(r1.Closes()) == 1 }, "old relay was never closed")
	s, _ := f.r.Stats("0")
	if s.URL != dead || s.Connected {
		t.Errorf("stats %+v, want the dead URL, not connected", s)
	}
	testutil.Eventually(t, wait, func() bool { s, _ := f.r.Stats("0"); return s.Failures >= 2 }, "new URL is not retried")
}

// A rule changed and changed back before the new URL connected keeps its
// first connection: no reconnect, no close.
func TestSwapCancelled(t *testing.T) {
	r1 := testrelay.New(t, testrelay.Options{})
	f := newFixture(t, Config{})
	rule := Rule{Stream: "cam", Destination: r1.URL(), ID: "0"}
	f.set(rule)
	f.waitConnected("0", r1.URL())
	f.set(Rule{Stream: "cam", Destination: closedURL(t), ID: "0"})
	f.set(rule)
	f.pub("cam", testrelay.Msg{Data: []byte("still here")})
	testutil.Eventually(t, wait, func() bool { return r1.Count() == 1 }, "data stopped")
	if len(r1.Headers()) != 1 || len(r1.Closes()) != 0 {
		t.Errorf("relay saw %d handshakes and closes %v, want 1 and none", len(r1.Headers()), r1.Closes())
	}
}

// Setting a rule again: the same rule changes nothing, a new stream moves
// the subscription without reconnecting, a new token reconnects with it.
func TestUpdates(t *testing.T) {
	for _, tc := range []struct {
		name       string
		update     Rule
		handshakes int
		topic      string
		auth       string
	}{
		{"same rule", Rule{Stream: "a", ID: "0", Token: "t1"}, 1, "a", "Bearer t1"},
		{"new stream", Rule{Stream: "b", ID: "0", Token: "t1"}, 1, "b", "Bearer t1"},
		{"new token", Rule{Stream: "a", ID: "0", Token: "t2"}, 2, "a", "Bearer t2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := testrelay.New(t, testrelay.Options{})
			f := newFixture(t, Config{})
			f.set(Rule{Stream: "a", Destination: rl.URL(), ID: "0", Token: "t1"})
			f.waitConnected("0", rl.URL())
			tc.update.Destination = rl.URL()
			f.set(tc.update)
			if got, _ := f.r.Get("0"); got != tc.update {
				t.Errorf("Get = %+v, want %+v", got, tc.update)
			}
			testutil.Eventually(t, wait, func() bool { return len(rl.Headers()) == tc.handshakes && f.r.Connected("0") },
				"relay saw %d handshakes, want %d", len(rl.Headers()), tc.handshakes)
			if tc.handshakes == 2 {
				f.waitConnected("0", rl.URL())
				testutil.Eventually(t, wait, func() bool { return len(rl.Closes()) == 1 }, "old connection not closed")
			}
			// Once the old topic is left, only the wanted one is
			// forwarded; the marker comes last.
			testutil.Eventually(t, wait, func() bool { return f.h.Topics() == 1 }, "old topic still subscribed")
			other := map[string]string{"a": "b", "b": "a"}[tc.topic]
			f.pub(other, testrelay.Msg{Data: []byte("wrong topic")})
			f.pub(tc.topic, testrelay.Msg{Data: []byte("marker")})
			testutil.Eventually(t, wait, func() bool { return rl.Count() == 1 }, "marker never arrived")
			sameMsgs(t, rl.Msgs(), []testrelay.Msg{{Data: []byte("marker")}})
			if got := rl.Headers()[tc.handshakes-1].Get("Authorization"); got != tc.auth {
				t.Errorf("Authorization = %q, want %q", got, tc.auth)
			}
		})
	}
}

// Refresh moves a destination to its stream's new topic; the new topic is
// subscribed by the time Refresh returns, and the connection stays.
func TestRefresh(t *testing.T) {
	var mu sync.Mutex
	topics := map[string]string{"cam": "feed/cam"}
	resolve := func(s string) string { mu.Lock(); defer mu.Unlock(); return topics[s] }
	rl := testrelay.New(t, testrelay.Options{})
	f := newFixture(t, Config{Resolve: resolve})
	f.set(Rule{Stream: "cam", Destination: rl.URL(), ID: "0"})
	f.waitConnected("0", rl.URL())
	f.pub("feed/cam", testrelay.Msg{Data: []byte("feed")})
	testutil.Eventually(t, wait, func() bool { return rl.Count() == 1 }, "feed data missing")

	mu.Lock()
	topics["cam"] = "stream/cam"
	mu.Unlock()
	f.r.Refresh()
	f.pub("stream/cam", testrelay.Msg{Data: []byte("stream")}) // no wait: the subscription is in force
	testutil.Eventually(t, wait, func() bool { return rl.Count() == 2 }, "stream data missing")
	f.pub("feed/cam", testrelay.Msg{Data: []byte("old topic")})
	f.pub("stream/cam", testrelay.Msg{Data: []byte("marker")})
	testutil.Eventually(t, wait, func() bool { return rl.Count() == 3 }, "marker missing")
	sameMsgs(t, rl.Msgs(), []testrelay.Msg{{Data: []byte("feed")}, {Data: []byte("stream")}, {Data: []byte("marker")}})
	if len(rl.Headers()) != 1 {
		t.Errorf("relay saw %d handshakes, want 1: a move must not reconnect", len(rl.Headers()))
	}
	testutil.Eventually(t, wait, func() bool { return f.h.Topics() == 1 }, "old topic still held: %d topics", f.h.Topics())
}

// A destination whose remote stops reading (its socket buffers fill) loses
// its own messages; another destination of the same topic keeps every one.
func TestSlowDestination(t *testing.T) {
	stuck := testrelay.New(t, testrelay.Options{Stall: true})
	fast := testrelay.New(t, testrelay.Options{})
	f := newFixture(t, Config{Queue: 16, CloseTimeout: 100 * time.Millisecond})
	f.set(Rule{Stream: "cam", Destination: stuck.URL(), ID: "stuck"})
	f.set(Rule{Stream: "cam", Destination: fast.URL(), ID: "fast"})
	f.waitConnected("stuck", stuck.URL())
	f.waitConnected("fast", fast.URL())

	const n = 300
	for i := range n {
		data := make([]byte, 64<<10)
		copy(data, seq(i))
		f.pub("cam", testrelay.Msg{Data: data})
		// The fast relay's progress is the pace: were it held up by the
		// stuck one, this would time out.
		testutil.Eventually(t, wait, func() bool { return fast.Count() >= i+1-8 },
			"fast destination stalled at %d of %d", fast.Count(), i+1)
	}
	testutil.Eventually(t, wait, func() bool { return fast.Count() == n }, "fast relay got %d of %d", fast.Count(), n)
	for i, s := range seqs(fast.Msgs()) {
		if s != i {
			t.Fatalf("fast relay: message %d has sequence %d", i, s)
		}
	}
	s, _ := f.r.Stats("stuck")
	if s.Dropped == 0 {
		t.Errorf("stuck destination dropped nothing (%+v): back-pressure never reached it, the test proves nothing", s)
	}
	if fs, _ := f.r.Stats("fast"); fs.Dropped != 0 {
		t.Errorf("fast destination dropped %d", fs.Dropped)
	}
}

func TestBadRules(t *testing.T) {
	good := Rule{Stream: "cam", Destination: "ws://relay.example:8080/in/lab1", ID: "0"}
	with := func(f func(*Rule)) Rule { r := good; f(&r); return r }
	for _, tc := range []struct {
		name string
		rule Rule
		msg  string
	}{
		{"http scheme", with(func(r *Rule) { r.Destination = "http://relay/in/x" }), "ws:// or wss://"},
		{"no scheme", with(func(r *Rule) { r.Destination = "relay/in/x" }), "ws:// or wss://"},
		{"no host", with(func(r *Rule) { r.Destination = "ws:///in/x" }), "no host"},
		{"port only", with(func(r *Rule) { r.Destination = "wss://:443/in/x" }), "no host"},
		{"not a URL", with(func(r *Rule) { r.Destination = "ws://[::1/x" }), "not a URL"},
		{"empty destination", with(func(r *Rule) { r.Destination = "" }), "ws:// or wss://"},
		{"parent", with(func(r *Rule) { r.File = "../x.ts" }), ".."},
		{"inner parent", with(func(r *Rule) { r.File = "a/../../x.ts" }), ".."},
		{"harmless parent", with(func(r *Rule) { r.File = "a/../x.ts" }), ".."},
		{"absolute", with(func(r *Rule) { r.File = "/abs.ts" }), "absolute"},
		{"backslash absolute", with(func(r *Rule) { r.File = `\abs.ts` }), "absolute"},
		{"folder", with(func(r *Rule) { r.File = "lab1/" }), "folder"},
		{"dot", with(func(r *Rule) { r.File = "." }), "folder"},
		{"NUL", with(func(r *Rule) { r.File = "x\x00.ts" }), "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			err := f.r.Set(tc.rule)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Set(%+v) = %v, want ErrInvalid mentioning %q", tc.rule, err, tc.msg)
			}
			if n := len(f.r.All()); n != 0 {
				t.Errorf("%d rules stored", n)
			}
			if _, err := os.Stat(f.dir); !os.IsNotExist(err) {
				t.Errorf("recordings folder touched: %v", err)
			}
			if f.h.Topics() != 0 {
				t.Errorf("%d topics subscribed", f.h.Topics())
			}
			// A bad update leaves the stored rule as it was.
			f.set(good)
			bad := tc.rule
			bad.ID = good.ID
			if err := f.r.Set(bad); !errors.Is(err, ErrInvalid) {
				t.Fatalf("bad update: %v, want ErrInvalid", err)
			}
			if got, _ := f.r.Get(good.ID); got != good {
				t.Errorf("after a bad update Get = %+v, want %+v", got, good)
			}
		})
	}
}

func TestOneFileOneDestination(t *testing.T) {
	f := newFixture(t, Config{})
	f.set(Rule{Stream: "cam", Destination: closedURL(t), ID: "a", File: "lab1/cam.ts"})
	err := f.r.Set(Rule{Stream: "mic", Destination: closedURL(t), ID: "b", File: "lab1/./cam.ts"})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("second rule on the same file: %v, want ErrInvalid", err)
	}
	if _, ok := f.r.Get("b"); ok {
		t.Error("rule b stored")
	}
}

// The file holds exactly the bytes pushed, including while the remote was
// down, and Delete flushes it (the periodic flush is an hour away here).
func TestRecordingAcrossOutage(t *testing.T) {
	rl := testrelay.New(t, testrelay.Options{})
	addr := rl.Addr()
	f := newFixture(t, Config{FlushInterval: time.Hour})
	f.set(Rule{Stream: "cam", Destination: rl.URL(), ID: "0", File: "lab1/cam.ts"})
	f.waitConnected("0", rl.URL())
	var want []byte
	push := func(from, to int) {
		for i := from; i < to; i++ {
			m := testrelay.Msg{Data: fmt.Appendf(nil, "packet %05d;", i), Text: i%7 == 0}
			f.pub("cam", m)
			want = append(want, m.Data...)
		}
	}
	push(0, 100)
	testutil.Eventually(t, wait, func() bool { return rl.Count() == 100 }, "relay got %d of 100", rl.Count())
	rl.Stop()
	testutil.Eventually(t, wait, func() bool { return !f.r.Connected("0") }, "outage not noticed")
	push(100, 200)
	rl2 := testrelay.New(t, testrelay.Options{Addr: addr})
	f.waitConnected("0", rl2.URL())
	push(200, 300)
	testutil.Eventually(t, wait, func() bool { return rl2.Count() == 100 }, "relay got %d of the last 100", rl2.Count())

	if !f.r.Delete("0") {
		t.Fatal("Delete found no rule")
	}
	got, err := os.ReadFile(filepath.Join(f.dir, "lab1", "cam.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("file has %d bytes, want %d (the pushed bytes exactly)", len(got), len(want))
	}
}

func TestRecordingFlushed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flush time.Duration
		end   func(f *fixture)
	}{
		{"regularly", 10 * time.Millisecond, func(*fixture) {}},
		{"on Close", time.Hour, func(f *fixture) { f.r.Close() }},
		{"on DeleteAll", time.Hour, func(f *fixture) { f.r.DeleteAll() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{FlushInterval: tc.flush})
			f.set(Rule{Stream: "cam", Destination: closedURL(t), ID: "0", File: "cam.ts"})
			var want []byte
			for i := range 50 {
				d := bytes.Repeat([]byte{byte(i)}, 188)
				f.pub("cam", testrelay.Msg{Data: d})
				want = append(want, d...)
			}
			tc.end(f)
			name := filepath.Join(f.dir, "cam.ts")
			testutil.Eventually(t, wait, func() bool {
				got, _ := os.ReadFile(name)
				return bytes.Equal(got, want)
			}, "file does not hold the %d bytes pushed", len(want))
		})
	}
}

// wss:// works with the relay's CA in Config.TLS; without it (system roots)
// or with another CA the dial is refused and the log names the certificate
// error. Verification is never switched off.
func TestTLS(t *testing.T) {
	rl := testrelay.New(t, testrelay.Options{TLS: true})
	f := newFixture(t, Config{TLS: rl.TLSConfig()})
	f.set(Rule{Stream: "cam", Destination: rl.URL(), ID: "0"})
	f.waitConnected("0", rl.URL())
	f.pub("cam", testrelay.Msg{Data: []byte("over TLS")})
	testutil.Eventually(t, wait, func() bool { return rl.Count() == 1 }, "no data over TLS")

	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"system roots", Config{}},
		{"another CA", Config{TLS: &tls.Config{RootCAs: testutil.NewCA(t, t.TempDir(), "vw test CA").Pool()}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl := testrelay.New(t, testrelay.Options{TLS: true})
			l, hook := logtest.NewNullLogger()
			tc.cfg.Recordings = t.TempDir()
			tc.cfg.BackoffMin = 5 * time.Millisecond
			r := newRWC(t, tc.cfg, hub.New(), logrus.NewEntry(l))
			defer r.Close()
			if err := r.Set(Rule{Stream: "cam", Destination: rl.URL(), ID: "0"}); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, wait, func() bool { s, _ := r.Stats("0"); return s.Failures >= 2 }, "no refused dial")
			var found bool
			for _, e := range hook.AllEntries() {
				err, _ := e.Data["err"].(error)
				if e.Level == logrus.WarnLevel && err != nil && strings.Contains(err.Error(), "x509: certificate signed by unknown authority") &&
					e.Data["id"] == "0" && e.Data["url"] == rl.URL() {
					found = true
				}
			}
			if !found {
				t.Errorf("no warning naming the certificate error with id and url; log: %v", entries(hook))
			}
			if r.Connected("0") || len(rl.Headers()) != 0 {
				t.Error("connected despite an untrusted certificate")
			}
		})
	}
}

// TLSConfig adds a CA file to the system roots; a file that is not PEM is
// refused, not ignored.
func TestTLSConfigFromCAFile(t *testing.T) {
	rl := testrelay.New(t, testrelay.Options{TLS: true})
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rl.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := TLSConfig(ca)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Config{TLS: cfg})
	f.set(Rule{Stream: "cam", Destination: rl.URL(), ID: "0"})
	f.waitConnected("0", rl.URL())

	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{junk, filepath.Join(dir, "missing.pem")} {
		if _, err := TLSConfig(name); err == nil {
			t.Errorf("TLSConfig(%s) accepted", name)
		}
	}
	if cfg, err := TLSConfig(""); err != nil || cfg.RootCAs != nil || cfg.InsecureSkipVerify {
		t.Errorf("TLSConfig(\"\") = %+v, %v; want system roots", cfg, err)
	}
}

func entries(h *logtest.Hook) []string {
	var out []string
	for _, e := range h.AllEntries() {
		out = append(out, fmt.Sprintf("%s %s %v", e.Level, e.Message, e.Data))
	}
	return out
}

func TestDeleteAllKeeps(t *testing.T) {
	f := newFixture(t, Config{})
	relays := map[string]*testrelay.Relay{}
	for _, id := range []string{"a", "apiRule", "c"} {
		relays[id] = testrelay.New(t, testrelay.Options{})
		f.set(Rule{Stream: "cam", Destination: relays[id].URL(), ID: id})
	}
	for id, rl := range relays {
		f.waitConnected(id, rl.URL())
	}
	f.r.DeleteAll("apiRule")
	if ids := slices.Sorted(maps.Keys(f.r.All())); !slices.Equal(ids, []string{"apiRule"}) {
		t.Errorf("rules left %v, want [apiRule]", ids)
	}
	for id, rl := range relays {
		want := 1
		if id == "apiRule" {
			want = 0
		}
		testutil.Eventually(t, wait, func() bool { return len(rl.Closes()) == want }, "%s: close frames %v, want %d", id, rl.Closes(), want)
	}
	if f.r.Delete("a") {
		t.Error("Delete of a deleted rule reported true")
	}
	f.pub("cam", testrelay.Msg{Data: []byte("x")})
	testutil.Eventually(t, wait, func() bool { return relays["apiRule"].Count() == 1 }, "kept destination stopped")
}

func TestSetAfterClose(t *testing.T) {
	f := newFixture(t, Config{})
	f.r.Close()
	if err := f.r.Set(Rule{Stream: "cam", Destination: closedURL(t), ID: "0"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Set after Close = %v, want ErrClosed", err)
	}
}

// 10,000 rule set/swap/delete cycles leave no goroutine, file, topic or
// heap growth behind.
func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("churn is long-ish")
	}
	f := newFixture(t, Config{})
	url1, url2 := closedURL(t), closedURL(t)
	cycle := func(i int) {
		f.set(Rule{Stream: "cam", Destination: url1, ID: "churn", File: "churn.ts"})
		if i%2 == 0 {
			f.set(Rule{Stream: "mic", Destination: url2, ID: "churn", File: "churn2.ts"})
		}
		if !f.r.Delete("churn") {
			t.Fatalf("cycle %d: Delete found nothing", i)
		}
	}
	cycle(0) // first use: the recordings folder, pools
	baseline := goleak.IgnoreCurrent()
	fds := openFDs(t)
	heap := heapAlloc()
	for i := range 10_000 {
		cycle(i)
	}
	// Straight away: the garbage collector closes forgotten files too,
	// given time.
	if open := recordingsOpen(t, f.dir); len(open) > 0 {
		t.Errorf("recordings still open: %v", open)
	}
	goleak.VerifyNone(t, baseline)
	if n := openFDs(t); n > fds {
		t.Errorf("%d open file descriptors, %d before", n, fds)
	}
	// Some slack for the runtime's own caches; a leak of even a few
	// hundred bytes per cycle would be megabytes.
	if h := heapAlloc(); h > heap+1<<20 {
		t.Errorf("heap grew from %d to %d bytes", heap, h)
	}
	if n := f.h.Topics(); n != 0 {
		t.Errorf("%d topics left", n)
	}
	if n := len(f.r.All()); n != 0 {
		t.Errorf("%d rules left", n)
	}
}

// recordingsOpen lists this process's open files inside dir.
func recordingsOpen(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		testutil.Unavailable(t, "cannot list open files: %v", err)
	}
	var open []string
	for _, e := range es {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			open = append(open, target)
		}
	}
	return open
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		testutil.Unavailable(t, "cannot count open files: %v", err)
	}
	return len(es)
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"cam.ts", "../x.ts", "/abs.ts", "a/b/c.ts", "a/../b", ".", "", `..\x`, "x\x00"} {
		f.Add("ws://relay:8080/in/x", s)
	}
	f.Add("wss://[::1]:443/in/x", "lab1/cam.ts")
	f.Add("ws://:80/x", "")
	f.Fuzz(func(t *testing.T, dest, file string) {
		err := Validate(Rule{Stream: "cam", Destination: dest, ID: "0", File: file})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if reconws.CheckURL(dest) != nil {
			t.Fatalf("accepted URL %q", dest)
		}
		if file != "" {
			const root = "/recordings"
			p := filepath.Join(root, file)
			if !filepath.IsLocal(file) || !strings.HasPrefix(p, root+"/") ||
				slices.Contains(strings.Split(filepath.ToSlash(file), "/"), "..") {
				t.Fatalf("accepted file %q, which resolves to %q", file, p)
			}
		}
	})
}
