package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/agg"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

type fixture struct {
	url        string
	hub        *hub.Hub
	rules      *rules.Service
	srv        *Server
	recordings string
}

// newFixture starts a real vw stream HTTP server on loopback with real
// rules, muxers and destination clients behind it.
func newFixture(t testing.TB, cfg Config, rcfg rules.Config) *fixture {
	t.Helper()
	return newFixtureLog(t, cfg, rcfg, testutil.Log(t))
}

// newFixtureLog is newFixture logging to log.
func newFixtureLog(t testing.TB, cfg Config, rcfg rules.Config, log *logrus.Entry) *fixture {
	t.Helper()
	return newFixtureHub(t, cfg, rcfg, log, hub.New())
}

// newFixtureHub is newFixtureLog on a hub the test has set up.
func newFixtureHub(t testing.TB, cfg Config, rcfg rules.Config, log *logrus.Entry, h *hub.Hub) *fixture {
	t.Helper()
	a, err := agg.New(agg.Config{}, h, log)
	if err != nil {
		t.Fatal(err)
	}
	recordings := t.TempDir()
	r, err := rwc.New(rwc.Config{Recordings: recordings, Resolve: rules.Resolver(a)}, h, log)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.New(rcfg, a, r, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, h, rs, log)
	if err != nil {
		rs.Close()
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
		rs.Close()
	})
	return &fixture{url: ts.URL, hub: h, rules: rs, srv: srv, recordings: recordings}
}

// do sends a request and returns the status and the body with its trailing
// newline trimmed.
func (f *fixture) do(t *testing.T, method, path, body string, header ...string) (int, string) {
	t.Helper()
	resp := testutil.Do(t, testutil.Req{Method: method, URL: f.url + path, Body: body, Header: header})
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return resp.Status, strings.TrimSuffix(resp.Body, "\n")
}

// TestRESTContract walks the README's REST table in order: each step is a
// request a curl user makes and the exact answer they see.
func TestRESTContract(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	for _, s := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/healthcheck", "", 200, `"ok"`},
		{"POST", "/api/streams", `{"stream":"/stream/front/large","feeds":["video0","audio0"]}`, 200, `{"stream":"stream/front/large","feeds":["video0","audio0"]}`},
		{"PUT", "/api/streams", `{"stream":"stream/back","feeds":["video1"]}`, 200, `{"stream":"stream/back","feeds":["video1"]}`},
		{"GET", "/api/streams/all", "", 200, `{"stream/back":["video1"],"stream/front/large":["video0","audio0"]}`},
		{"GET", "/api/streams/stream/front/large", "", 200, `["video0","audio0"]`},
		{"POST", "/api/streams", `{"stream":"stream/front/large","feeds":["video0"]}`, 200, `{"stream":"stream/front/large","feeds":["video0"]}`},
		{"GET", "/api/streams/stream/front/large", "", 200, `["video0"]`},
		{"GET", "/api/streams/stream/nope", "", 404, `{"error":"no stream \"stream/nope\""}`},
		{"DELETE", "/api/streams/stream/back", "", 200, `"stream/back"`},
		{"DELETE", "/api/streams/stream/back", "", 404, `{"error":"not found: no stream \"stream/back\""}`},
		{"DELETE", "/api/streams/all", "", 200, `"deleteAll"`},
		{"GET", "/api/streams/all", "", 200, `{}`},

		{"POST", "/api/destinations", `{"stream":"stream/front/large","destination":"wss://relay.example/in/lab1","id":"0"}`, 200, `{"stream":"stream/front/large","destination":"wss://relay.example/in/lab1","id":"0"}`},
		{"PUT", "/api/destinations", `{"stream":"video1","destination":"ws://127.0.0.1:1/in/v1","id":"1","token":"t0k","file":"v1.ts"}`, 200, `{"stream":"video1","destination":"ws://127.0.0.1:1/in/v1","id":"1","token":"set","file":"v1.ts"}`},
		{"GET", "/api/destinations/all", "", 200, `{"0":{"stream":"stream/front/large","destination":"wss://relay.example/in/lab1","id":"0"},"1":{"stream":"video1","destination":"ws://127.0.0.1:1/in/v1","id":"1","token":"set","file":"v1.ts"}}`},
		{"GET", "/api/destinations/0", "", 200, `{"stream":"stream/front/large","destination":"wss://relay.example/in/lab1","id":"0"}`},
		{"POST", "/api/destinations", `{"stream":"stream/front/large","destination":"wss://other.example/in/lab1","id":"0"}`, 200, `{"stream":"stream/front/large","destination":"wss://other.example/in/lab1","id":"0"}`},
		{"GET", "/api/destinations/0", "", 200, `{"stream":"stream/front/large","destination":"wss://other.example/in/lab1","id":"0"}`},
		{"GET", "/api/destinations/9", "", 404, `{"error":"no destination \"9\""}`},
		{"DELETE", "/api/destinations/0", "", 200, `"0"`},
		{"DELETE", "/api/destinations/0", "", 404, `{"error":"not found: no destination \"0\""}`},
		{"DELETE", "/api/destinations/all", "", 200, `"deleteAll"`},
		{"GET", "/api/destinations/all", "", 200, `{}`},
	} {
		status, body := f.do(t, s.method, s.path, s.body)
		if status != s.status || body != s.want {
			t.Fatalf("%s %s %s\n got %d %s\nwant %d %s", s.method, s.path, s.body, status, body, s.status, s.want)
		}
	}
}

// TestBadInput checks that every kind of bad request gets a 4xx with a
// one-line JSON reason, and stores nothing.
func TestBadInput(t *testing.T) {
	f := newFixture(t, Config{MaxBody: 1 << 20}, rules.Config{})
	big := `{"stream":"s","feeds":["` + strings.Repeat("a", 1<<20) + `"]}`
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		reason                   string
	}{
		{"malformed JSON", "POST", "/api/streams", `{"stream":`, 400, "bad JSON"},
		{"not an object", "POST", "/api/streams", `["a"]`, 400, "bad JSON"},
		{"empty body", "POST", "/api/streams", ``, 400, "empty body"},
		{"two values", "POST", "/api/streams", `{"stream":"s","feeds":["a"]}{}`, 400, "more than one value"},
		{"unknown field", "POST", "/api/streams", `{"stream":"s","feed":["a"]}`, 400, `unknown field "feed"`},
		{"missing feeds", "POST", "/api/streams", `{"stream":"s"}`, 400, `missing "feeds"`},
		{"empty feeds", "POST", "/api/streams", `{"stream":"s","feeds":[]}`, 400, `"feeds" is empty`},
		{"empty stream", "POST", "/api/streams", `{"stream":"","feeds":["a"]}`, 400, "stream name is empty"},
		{"bad stream name", "POST", "/api/streams", `{"stream":"a b","feeds":["a"]}`, 400, `stream name "a b"`},
		{"stream named all", "POST", "/api/streams", `{"stream":"all","feeds":["a"]}`, 400, "reserved"},
		{"bad feed name", "POST", "/api/streams", `{"stream":"s","feeds":["../etc"]}`, 400, `feed name "../etc"`},
		{"feed twice", "POST", "/api/streams", `{"stream":"s","feeds":["a","a"]}`, 400, "listed twice"},
		{"body over 1 MiB", "POST", "/api/streams", big, 413, "larger than 1 MiB"},
		{"missing id", "POST", "/api/destinations", `{"stream":"s","destination":"ws://h/in/x"}`, 400, `missing "id"`},
		{"missing destination", "POST", "/api/destinations", `{"stream":"s","id":"0"}`, 400, `missing "destination"`},
		{"empty stream", "POST", "/api/destinations", `{"stream":"","destination":"ws://h/in/x","id":"0"}`, 400, "stream name is empty"},
		{"http URL", "POST", "/api/destinations", `{"stream":"s","destination":"http://h/in/x","id":"0"}`, 400, "ws://"},
		{"no host", "POST", "/api/destinations", `{"stream":"s","destination":"ws:///in/x","id":"0"}`, 400, "host"},
		{"file escapes", "POST", "/api/destinations", `{"stream":"s","destination":"ws://h/in/x","id":"0","file":"../x.ts"}`, 400, "file"},
		{"absolute file", "POST", "/api/destinations", `{"stream":"s","destination":"ws://h/in/x","id":"0","file":"/tmp/x.ts"}`, 400, "file"},
		{"id all", "POST", "/api/destinations", `{"stream":"s","destination":"ws://h/in/x","id":"all"}`, 400, "reserved"},
		{"unknown route", "GET", "/api/nothing", ``, 404, "no such route"},
		{"wrong method", "PATCH", "/api/streams", `{}`, 405, "not allowed"},
		{"bad feed in ingest", "POST", "/ts/a%20b", `x`, 400, `feed name "a b"`},
		{"control topic in ingest", "POST", "/ts/api", `x`, 400, "reserved for the control API"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.do(t, c.method, c.path, c.body)
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Fatalf("body %q is not {\"error\":...}", body)
			}
			if status != c.status || !strings.Contains(e.Error, c.reason) || strings.Contains(e.Error, "\n") {
				t.Fatalf("got %d %q, want %d with one line containing %q", status, e.Error, c.status, c.reason)
			}
		})
	}
	if n := len(f.rules.Streams()) + len(f.rules.Destinations()); n != 0 {
		t.Fatalf("bad input stored %d rules", n)
	}
}

func TestTokenRequired(t *testing.T) {
	f := newFixture(t, Config{Token: "s3cret"}, rules.Config{})
	if status, _ := f.do(t, "GET", "/healthcheck", ""); status != 200 {
		t.Fatalf("healthcheck needs no token, got %d", status)
	}
	for _, path := range []string{"/api/streams/all", "/api/destinations/all"} {
		if status, body := f.do(t, "GET", path, ""); status != 401 || !strings.Contains(body, "API token") {
			t.Fatalf("GET %s without token: %d %s", path, status, body)
		}
		if status, _ := f.do(t, "GET", path, "", "Authorization", "Bearer wrong"); status != 401 {
			t.Fatalf("GET %s with a wrong token: %d", path, status)
		}
		if status, _ := f.do(t, "GET", path, "", "Authorization", "Bearer s3cret"); status != 200 {
			t.Fatalf("GET %s with the token: %d", path, status)
		}
	}
	if status, _ := f.do(t, "POST", "/ts/video0", "", ""); status != 401 {
		t.Fatalf("ingest without token: %d", status)
	}
}

// TestControlAPI runs every verb of the control API (README, "The control
// API") through the command interpreter, in order, with an apiRule
// installed.
func TestControlAPI(t *testing.T) {
	api := &rwc.Rule{Destination: "ws://127.0.0.1:1/bi/lab1/api"}
	f := newFixture(t, Config{}, rules.Config{APIRule: api})
	apiJSON := `"apiRule":{"stream":"api","destination":"ws://127.0.0.1:1/bi/lab1/api","id":"apiRule"}`
	for _, s := range []struct{ send, want string }{
		{`{"verb":"healthcheck"}`, `{"healthcheck":"ok"}`},
		{`{"verb":"add","what":"destination","rule":{"stream":"video0","destination":"wss://relay.example/in/video0","id":"0"}}`, `{"stream":"video0","destination":"wss://relay.example/in/video0","id":"0"}`},
		{`{"verb":"add","what":"stream","rule":{"stream":"video0","feeds":["video0","audio0"]}}`, `{"stream":"video0","feeds":["video0","audio0"]}`},
		{`{"verb":"list","what":"stream","which":"video0"}`, `{"feeds":["video0","audio0"]}`},
		{`{"verb":"list","what":"stream","which":"nope"}`, `{"feeds":null}`},
		{`{"verb":"list","what":"stream","which":"all"}`, `{"video0":["video0","audio0"]}`},
		{`{"verb":"list","what":"destination","which":"0"}`, `{"stream":"video0","destination":"wss://relay.example/in/video0","id":"0"}`},
		{`{"verb":"list","what":"destination","which":"all"}`, `{"0":{"stream":"video0","destination":"wss://relay.example/in/video0","id":"0"},` + apiJSON + `}`},
		{`{"verb":"delete","what":"stream","which":"video0"}`, `{"deleted":"video0"}`},
		{`{"verb":"delete","what":"stream","which":"all"}`, `{"deleted":"deleteAll"}`},
		{`{"verb":"delete","what":"destination","which":"0"}`, `{"deleted":"0"}`},
		{`{"verb":"delete","what":"destination","which":"apiRule"}`, `{"error":"Cannot delete apiRule"}`},
		{`{"verb":"add","what":"destination","rule":{"stream":"x","destination":"ws://evil.example/","id":"apiRule"}}`, `{"error":"bad rule: Cannot modify apiRule over the control API"}`},
		{`{"verb":"add","what":"destination","rule":{"stream":"video0","destination":"wss://relay.example/in/video0","id":"1"}}`, `{"stream":"video0","destination":"wss://relay.example/in/video0","id":"1"}`},
		{`{"verb":"delete","what":"destination","which":"all"}`, `{"deleted":"deleteAll"}`},
		{`{"verb":"list","what":"destination","which":"all"}`, `{` + apiJSON + `}`},
		{`{"verb":"dance"}`, `{"error":"Unrecognised Command"}`},
		{`{"verb":"list","what":"feeds","which":"all"}`, `{"error":"Unrecognised Command"}`},
		{`not json`, `{"error":"Unrecognised Command"}`},
		{`{"verb":"add","what":"stream","rule":{"stream":"s","feeds":"video0"}}`, `{"error":"bad rule: json: cannot unmarshal string into Go struct field StreamRule.feeds of type []string"}`},
	} {
		got := string(f.srv.Command(context.Background(), []byte(s.send)))
		if got != s.want {
			t.Fatalf("send %s\n got %s\nwant %s", s.send, got, s.want)
		}
	}
	// REST sees what the control API did: one service behind both.
	if status, body := f.do(t, "GET", "/api/destinations/all", ""); status != 200 || body != `{`+apiJSON+`}` {
		t.Fatalf("REST after control API: %d %s", status, body)
	}
}

// FuzzCommand feeds arbitrary messages to the control API interpreter: it
// must never panic, must answer every message that is not JSON with one
// JSON object, and must never answer JSON without a string "verb" (a
// reply, which answering would start a loop between hosts).
func FuzzCommand(f *testing.F) {
	for _, s := range []string{
		`{"verb":"healthcheck"}`,
		`{"verb":"add","what":"stream","rule":{"stream":"a","feeds":["b"]}}`,
		`{"verb":"add","what":"destination","rule":{"stream":"a","destination":"ws://127.0.0.1:1/x","id":"0","file":"a.ts"}}`,
		`{"verb":"list","what":"destination","which":"all"}`,
		`{"verb":"delete","what":"stream","which":"all"}`,
		`{"verb":"delete","what":"destination","which":"apiRule"}`,
		`{"verb":1}`, `null`, `{}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	fx := newFixture(f, Config{}, rules.Config{APIRule: &rwc.Rule{Destination: "ws://127.0.0.1:1/bi/api"}})
	f.Fuzz(func(t *testing.T, msg []byte) {
		reply := fx.srv.Command(context.Background(), msg)
		var probe map[string]json.RawMessage
		isCommand := json.Unmarshal(msg, &probe) == nil && len(probe["verb"]) > 0 && probe["verb"][0] == '"'
		if json.Valid(msg) && !isCommand {
			if reply != nil {
				t.Fatalf("%q is not a command but was answered %s", msg, reply)
			}
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(reply, &obj); err != nil || obj == nil {
			t.Fatalf("reply %q is not a JSON object: %v", reply, err)
		}
		if _, ok := fx.rules.Destination(rules.APIRuleID); !ok {
			t.Fatalf("%q removed the apiRule", msg)
		}
		// Keep the rule set small, so that the fuzzer measures the
		// interpreter rather than thousands of reconnecting clients.
		fx.rules.DeleteDestinations()
		fx.rules.DeleteStreams()
	})
}
