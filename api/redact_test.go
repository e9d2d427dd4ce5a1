package api

import (
	"context"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

const (
	secret    = "eyJhbGciOiJIUzI1NiJ9.relay-token.signature"
	apiSecret = "eyJhbGciOiJIUzI1NiJ9.api-token.signature"
)

// TestNoTokenLeaves sets rules with tokens over REST and the control API,
// the apiRule's included, and reads them every way there is: no answer and
// no log line holds a token; each says "token":"set"; the state file keeps
// the tokens, so that they survive a restart.
func TestNoTokenLeaves(t *testing.T) {
	var logged testutil.SyncBuffer // the destinations log from their own goroutines
	l := logrus.New()
	l.SetOutput(&logged)
	l.SetLevel(logrus.TraceLevel)
	f := newFixtureLog(t, Config{}, rules.Config{APIRule: &rwc.Rule{Destination: "ws://127.0.0.1:1/bi/lab1/api", Token: apiSecret}}, logrus.NewEntry(l))
	f.srv.refusals = newRateLog(f.srv.log, 0)

	var out []string
	rest := func(method, path, body string) string {
		status, b := f.do(t, method, path, body, "Content-Type", "application/json")
		if status != 200 {
			t.Fatalf("%s %s: %d %s", method, path, status, b)
		}
		out = append(out, b)
		return b
	}
	ctl := func(cmd string) string {
		b := string(f.srv.Command(context.Background(), []byte(cmd)))
		out = append(out, b)
		return b
	}
	got := rest("POST", "/api/destinations", `{"stream":"front","destination":"wss://relay.example/in/lab1","id":"0","token":"`+secret+`"}`)
	if want := `{"stream":"front","destination":"wss://relay.example/in/lab1","id":"0","token":"set"}`; got != want {
		t.Fatalf("POST echo %s, want %s", got, want)
	}
	rest("GET", "/api/destinations/0", "")
	rest("GET", "/api/destinations/apiRule", "")
	rest("GET", "/api/destinations/all", "")
	ctl(`{"verb":"add","what":"destination","rule":{"stream":"back","destination":"wss://relay.example/in/lab1/back","id":"1","token":"` + secret + `"}}`)
	ctl(`{"verb":"list","what":"destination","which":"1"}`)
	ctl(`{"verb":"list","what":"destination","which":"apiRule"}`)
	if got := ctl(`{"verb":"list","what":"destination","which":"all"}`); !strings.Contains(got, `"apiRule":{"stream":"api","destination":"ws://127.0.0.1:1/bi/lab1/api","id":"apiRule","token":"set"}`) {
		t.Fatalf("list all: %s", got)
	}
	// Refused commands are logged; a token in them is not.
	ctl(`{"verb":"add","what":"destination","rule":{"stream":"x y","destination":"wss://relay.example/","id":"2","token":"` + secret + `"}}`)
	ctl(`{"verb":"add","what":"destination","rule":{"stream":"back","destination":"wss://relay.example/","id":"2","token":"` + secret + `","Token":"x"}}`)

	for _, o := range append(out, logged.String()) {
		if strings.Contains(o, secret) || strings.Contains(o, apiSecret) || strings.Contains(o, "signature") {
			t.Fatalf("a token leaked: %s", o)
		}
	}
	st := f.rules.Snapshot()
	if st.Destinations["0"].Token != secret || st.Destinations["1"].Token != secret {
		t.Fatalf("the state does not keep the tokens: %+v", st.Destinations)
	}
}

// TestTokenKeep: a rule re-posted with "token":"keep" and the same URL keeps
// its token; without "token" it has none; "keep" never carries a token to
// another URL, nor makes one up; "set" (what listings show) is refused.
func TestTokenKeep(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	const url = "wss://relay.example/in/lab1"
	set := func(body string) (int, string) {
		return f.do(t, "POST", "/api/destinations", body, "Content-Type", "application/json")
	}
	token := func() string { return f.rules.Snapshot().Destinations["0"].Token }
	if status, body := set(`{"stream":"front","destination":"` + url + `","id":"0","token":"` + secret + `"}`); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	// Moved to another stream, token kept.
	if status, body := set(`{"stream":"back","destination":"` + url + `","id":"0","token":"keep"}`); status != 200 || !strings.Contains(body, `"token":"set"`) || token() != secret {
		t.Fatalf("keep: %d %s, stored token %q", status, body, token())
	}
	for _, c := range []struct{ body, reason string }{
		{`{"stream":"back","destination":"wss://evil.example/in/x","id":"0","token":"keep"}`, "same destination URL"},
		{`{"stream":"back","destination":"` + url + `","id":"9","token":"keep"}`, "no token to keep"},
		{`{"stream":"back","destination":"` + url + `","id":"0","token":"set"}`, "how listings show a token"},
	} {
		if status, body := set(c.body); status != 400 || !strings.Contains(body, c.reason) {
			t.Fatalf("%s: %d %s, want 400 mentioning %q", c.body, status, body, c.reason)
		}
	}
	if token() != secret {
		t.Fatalf("a refused rule changed the token to %q", token())
	}
	if rule := f.rules.Snapshot().Destinations["0"]; rule.Destination != url || rule.Stream != "back" {
		t.Fatalf("a refused rule changed the rule: %+v", rule)
	}
	// Without "token", the rule has none: a rule is replaced whole.
	if status, body := set(`{"stream":"back","destination":"` + url + `","id":"0"}`); status != 200 || strings.Contains(body, "token") || token() != "" {
		t.Fatalf("no token: %d %s, stored token %q", status, body, token())
	}
	if status, body := set(`{"stream":"back","destination":"` + url + `","id":"0","token":"keep"}`); status != 400 {
		t.Fatalf("keep after the token was dropped: %d %s", status, body)
	}
}
