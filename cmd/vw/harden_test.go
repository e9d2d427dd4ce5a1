package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
)

// TestTwoHostsOneControlRoute puts two vw streams on one control route, as
// two labs sharing a relay path by mistake would: an operator's command is
// answered once by each, and neither answers the other's reply (before, the
// two answered each other forever).
func TestTwoHostsOneControlRoute(t *testing.T) {
	relay := relayProc(t)
	route := "ws://" + relay.addr + "/bi/lab1/api"
	a := streamProc(t, "VW_API="+route)
	b := streamProc(t, "VW_API="+route)
	op := dialWS(t, route, nil)
	waitPeers(t, relay, "bi/lab1/api", 3)

	// Each host reads the route in order: the other host's reply to the
	// first command reaches it before the second command, so any answer
	// to that reply would arrive here before its answer to the second.
	op.send(t, `{"verb":"healthcheck"}`)
	op.send(t, `{"verb":"list","what":"stream","which":"marker"}`)
	var got []string
	for markers := 0; markers < 2; {
		m := op.next(t, 10*time.Second)
		if m.typ != websocket.TextMessage {
			t.Fatalf("binary message on the control route")
		}
		got = append(got, string(m.data))
		if string(m.data) == `{"feeds":null}` {
			markers++
		}
	}
	if len(got) != 4 || strings.Count(strings.Join(got, " "), `{"healthcheck":"ok"}`) != 2 {
		t.Fatalf("the operator saw %d messages, want 2 replies from each host: %v", len(got), got)
	}
	for _, p := range []*proc{a, b} {
		if strings.Contains(p.logText(), "control API command refused") {
			t.Fatalf("a host took the other's reply for a command:\n%s", p.logText())
		}
	}
}

// rss returns the resident memory of a process in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		testutil.Unavailable(t, "cannot read memory figures: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestManyFeedsRefused sends stream rules of 20,000 feeds, over REST and
// over the control API, again and again: each is refused with the limit in
// the reason, the host's memory stays flat, and no log line lists the
// feeds. (One such control message once took the host to 1.1 GB.)
func TestManyFeedsRefused(t *testing.T) {
	relay := relayProc(t)
	route := "ws://" + relay.addr + "/bi/lab1/api"
	stream := streamProc(t, "VW_API="+route)
	op := dialWS(t, route, nil)
	waitPeers(t, relay, "bi/lab1/api", 2)
	feeds := make([]string, 20_000)
	for i := range feeds {
		feeds[i] = fmt.Sprintf(`"feed%05d"`, i)
	}
	rule := `{"stream":"big","feeds":[` + strings.Join(feeds, ",") + `]}`

	before := rss(t, stream.Pid())
	for range 10 {
		status, body := httpDo(t, "POST", stream.baseURL+"/api/streams", rule)
		if status != 400 || !strings.Contains(body, "has 20000 feeds; at most 16 (VW_MAX_FEEDS_PER_STREAM)") {
			t.Fatalf("REST: %d %s", status, body)
		}
		op.send(t, `{"verb":"add","what":"stream","rule":`+rule+`}`)
		if m := op.next(t, 10*time.Second); !strings.Contains(string(m.data), "at most 16") {
			t.Fatalf("control API: %s", m.data)
		}
	}
	after := rss(t, stream.Pid())
	t.Logf("RSS %d MiB before, %d MiB after 20 refusals", before>>20, after>>20)
	if after > before+32<<20 {
		t.Fatalf("RSS grew from %d to %d MiB", before>>20, after>>20)
	}
	if status, body := httpDo(t, "GET", stream.baseURL+"/api/streams/all", ""); status != 200 || body != "{}" {
		t.Fatalf("rules after the refusals: %d %s", status, body)
	}
	if strings.Contains(stream.logText(), "feed19999") {
		t.Fatal("a log line lists the refused rule's feeds")
	}
}
