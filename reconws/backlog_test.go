package reconws

import (
	"runtime"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/netcap"
	"github.com/vwlab/vw/internal/testrelay"
	"github.com/vwlab/vw/internal/testutil"
)

// relayBytes is how many payload bytes the relay has received.
func relayBytes(r *testrelay.Relay) int64 {
	var n int64
	for _, m := range r.Msgs() {
		n += frameLen(len(m.Data))
	}
	return n
}

// cappedLink starts a relay, a link to it capped at 64 KiB/s towards the
// relay, and a client with cfg sending through the link, connected. The
// link closes first when the test ends, before the client stops.
func cappedLink(t *testing.T, cfg Config) (*testrelay.Relay, *netcap.Proxy, *Client) {
	t.Helper()
	r := testrelay.New(t, testrelay.Options{})
	link, err := netcap.Listen(r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	link.SetRate(64<<10, 0)
	cfg.URL = "ws://" + link.Addr() + "/in/test"
	c := start(t, cfg)
	t.Cleanup(link.Close)
	waitReady(t, c)
	return r, link, c
}

// Through a link capped below what the client sends, the backlog accounts
// for everything the relay has not received, but for the little a short
// bottleneck queue holds; once the link is uncapped it drains to nothing
// and every byte was written once.
func TestBacklogIsWhatThePeerLacks(t *testing.T) {
	r, link, c := cappedLink(t, Config{Queue: 1024})
	var total int64
	msg := make([]byte, 4000)
	for range 100 {
		if !c.Send(msg, false) {
			t.Fatal("Send refused")
		}
		total += frameLen(len(msg))
	}
	// The bottleneck's queue: the proxy's receive buffer (asked 4 KiB, the
	// kernel doubles it) and one read.
	const slack = 16 << 10
	unacked := false
	for range 5 {
		b := c.Backlog()
		got := relayBytes(r)
		if b.Bytes()+got < total-slack {
			t.Fatalf("backlog %+v and %d bytes at the relay: %d of %d bytes unaccounted for",
				b, got, total-b.Bytes()-got, total)
		}
		unacked = unacked || b.Unacked > 0
		testutil.WaitFor(100*time.Millisecond, func() bool { return false })
	}
	if runtime.GOOS == "linux" && !unacked {
		t.Error("the socket's unacknowledged bytes never showed in the backlog")
	}
	link.SetRate(0, 0)
	testutil.Eventually(t, wait5, func() bool { return c.Backlog().Bytes() == 0 }, "backlog never drained: %+v", c.Backlog())
	testutil.Eventually(t, wait5, func() bool { return r.Count() == 100 }, "relay got %d of 100 messages", r.Count())
	if b := c.Backlog(); b.Written != uint64(total) {
		t.Errorf("written %d bytes, want %d", b.Written, total)
	}
}

// A link slower than the data is not a dead peer: while writes get
// through, the client keeps its connection, however late the peer's pongs
// come back behind the data queued before the ping.
func TestSlowLinkKeepsConnection(t *testing.T) {
	r, link, c := cappedLink(t, Config{Queue: 1024, PingInterval: 100 * time.Millisecond, PongWait: 500 * time.Millisecond})
	msg := make([]byte, 2000)
	for range 150 { // 300 KB: over 4 s on this link, 8 pong waits
		if !c.Send(msg, false) {
			t.Fatal("Send refused")
		}
	}
	testutil.Eventually(t, 20*time.Second, func() bool { return r.Count() == 150 || c.Stats().Connects > 1 },
		"relay got %d of 150 messages", r.Count())
	if s := c.Stats(); s.Connects != 1 || link.Accepted() != 1 {
		t.Errorf("the slow link cost the connection: %+v, %d connections through the link", s, link.Accepted())
	}
}
