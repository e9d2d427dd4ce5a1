package api

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

func feedList(n int) string {
	feeds := make([]string, n)
	for i := range feeds {
		feeds[i] = fmt.Sprintf(`"f%d"`, i)
	}
	return "[" + strings.Join(feeds, ",") + "]"
}

// TestLimits: a stream rule over VW_MAX_FEEDS_PER_STREAM, and a new rule of
// either kind past VW_MAX_RULES, are refused with the limit in the reason,
// over REST and the control API; replacing a rule is always allowed; the
// apiRule does not count; a state saved under larger limits is restored
// whole.
func TestLimits(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{MaxFeedsPerStream: 3, MaxRules: 2, APIRule: &rwc.Rule{Destination: "ws://127.0.0.1:1/bi/api"}})
	ctx := context.Background()
	post := func(path, body string) (int, string) {
		return f.do(t, "POST", path, body, "Content-Type", "application/json")
	}
	refused := func(status int, body, limit string) {
		t.Helper()
		if status != 400 || !strings.Contains(body, limit) {
			t.Fatalf("got %d %s, want 400 naming %s", status, body, limit)
		}
	}
	status, body := post("/api/streams", `{"stream":"s","feeds":`+feedList(4)+`}`)
	refused(status, body, "at most 3 (VW_MAX_FEEDS_PER_STREAM)")
	reply := string(f.srv.Command(ctx, []byte(`{"verb":"add","what":"stream","rule":{"stream":"s","feeds":`+feedList(20000)+`}}`)))
	refused(400, reply, "has 20000 feeds; at most 3")

	for _, name := range []string{"a", "b"} {
		if status, body := post("/api/streams", `{"stream":"`+name+`","feeds":`+feedList(3)+`}`); status != 200 {
			t.Fatalf("stream %s: %d %s", name, status, body)
		}
		if status, body := post("/api/destinations", `{"stream":"a","destination":"ws://127.0.0.1:1/in/x","id":"`+name+`"}`); status != 200 {
			t.Fatalf("destination %s: %d %s", name, status, body)
		}
	}
	status, body = post("/api/streams", `{"stream":"c","feeds":["f0"]}`)
	refused(status, body, "already 2 stream rules, the most allowed (VW_MAX_RULES)")
	status, body = post("/api/destinations", `{"stream":"a","destination":"ws://127.0.0.1:1/in/x","id":"c"}`)
	refused(status, body, "already 2 destination rules")
	reply = string(f.srv.Command(ctx, []byte(`{"verb":"add","what":"destination","rule":{"stream":"a","destination":"ws://127.0.0.1:1/in/x","id":"c"}}`)))
	refused(400, reply, "VW_MAX_RULES")
	if status, body := post("/api/streams", `{"stream":"a","feeds":["f9"]}`); status != 200 {
		t.Fatalf("replacing a rule at the limit: %d %s", status, body)
	}
	if status, body := post("/api/destinations", `{"stream":"b","destination":"ws://127.0.0.1:1/in/y","id":"a"}`); status != 200 {
		t.Fatalf("replacing a destination at the limit: %d %s", status, body)
	}
	if n := len(f.rules.Streams()); n != 2 {
		t.Fatalf("%d stream rules stored", n)
	}

	saved := f.rules.Snapshot()
	g := newFixture(t, Config{}, rules.Config{MaxFeedsPerStream: 1, MaxRules: 1})
	if err := g.rules.Restore(ctx, saved); err != nil {
		t.Fatalf("restore under smaller limits: %v", err)
	}
	if got := g.rules.Snapshot(); len(got.Streams) != 2 || len(got.Destinations) != 2 {
		t.Fatalf("restored %+v", got)
	}
}
