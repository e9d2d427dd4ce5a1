package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

// TestControlNeverAnswersAReply feeds every reply the control API gives
// back to it, as a second vw stream on the same control route would: none
// is answered. Commands still are, text that is not JSON still gets the
// original tool's "Unrecognised Command", and a stream or destination named
// "verb" does not make a listing look like a command.
func TestControlNeverAnswersAReply(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{APIRule: &rwc.Rule{Destination: "ws://127.0.0.1:1/bi/lab1/api"}})
	ctx := context.Background()
	var replies []string
	for _, cmd := range []string{
		`{"verb":"healthcheck"}`,
		`{"verb":"add","what":"stream","rule":{"stream":"verb","feeds":["video0"]}}`,
		`{"verb":"add","what":"destination","rule":{"stream":"verb","destination":"ws://127.0.0.1:1/in/x","id":"verb","token":"abcdefghijklmnopq"}}`,
		`{"verb":"list","what":"stream","which":"verb"}`,
		`{"verb":"list","what":"stream","which":"all"}`,
		`{"verb":"list","what":"destination","which":"verb"}`,
		`{"verb":"list","what":"destination","which":"all"}`,
		`{"verb":"delete","what":"destination","which":"apiRule"}`,
		`{"verb":"delete","what":"stream","which":"verb"}`,
		`{"verb":"dance"}`,
		`not json`,
	} {
		reply := f.srv.Command(ctx, []byte(cmd))
		if reply == nil {
			t.Fatalf("command %s got no answer", cmd)
		}
		replies = append(replies, string(reply))
	}
	if replies[len(replies)-1] != `{"error":"Unrecognised Command"}` {
		t.Fatalf("text that is not JSON: %s", replies[len(replies)-1])
	}
	for _, r := range append(replies, `null`, `[]`, `"ok"`, `{}`, `{"verb":null}`, `{"verb":["a"]}`, `{"Verb":"healthcheck"}`) {
		if got := f.srv.Command(ctx, []byte(r)); got != nil {
			t.Errorf("%s was answered %s", r, got)
		}
	}
}

// TestControlRefusalsRateLimited sends 500 refused commands at once: the
// log gets a line or two, not 500, and the line says how many it stands
// for.
func TestControlRefusalsRateLimited(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	f := newFixture(t, Config{}, rules.Config{})
	f.srv.refusals = newRateLog(logrus.NewEntry(log), time.Second)
	start := time.Now()
	for range 500 {
		f.srv.Command(context.Background(), []byte(`{"verb":"dance"}`))
	}
	limit := 1 + int(time.Since(start)/time.Second) + 1 // one per second begun
	var lines, counted int
	for _, e := range hook.AllEntries() {
		if e.Message == "control API command refused" {
			lines++
			counted += e.Data["count"].(int)
		}
	}
	if lines == 0 || lines > limit {
		t.Fatalf("%d log lines for 500 refusals in %v", lines, time.Since(start))
	}
	if counted > 500 || counted < 1 {
		t.Fatalf("lines count %d refusals", counted)
	}
}

// TestRateLog checks the limiter on a clock the test moves: one line per
// reason per interval, the next one counting those left out.
func TestRateLog(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	now := time.Unix(1000, 0)
	l := newRateLog(logrus.NewEntry(log), time.Second)
	l.now = func() time.Time { return now }
	for range 10 {
		l.Warn("a", nil, "refused")
		l.Warn("b", nil, "refused")
		now = now.Add(50 * time.Millisecond)
	}
	now = now.Add(time.Second)
	l.Warn("a", nil, "refused")
	var got []string
	for _, e := range hook.AllEntries() {
		got = append(got, e.Data["reason"].(string)+"×"+strings.Repeat("|", e.Data["count"].(int)))
	}
	want := []string{"a×|", "b×|", "a×" + strings.Repeat("|", 10)}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("lines %v, want %v", got, want)
	}
}
