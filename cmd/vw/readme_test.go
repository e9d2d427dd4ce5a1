package main

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
)

// step is one command of a README session and the lines it must print.
type step struct {
	send string
	want []string
}

// readmeSession returns the steps of the fenced block that follows the
// marker <!-- session:NAME --> in README.md: command lines, each followed by
// its expected output on lines starting "#> ". Other "#" lines are comments.
// The first command is returned on its own (for websocat: the connection).
func readmeSession(t *testing.T, name string) []step {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "<!-- session:"+name+" -->")
	if !ok {
		t.Fatalf("README.md has no <!-- session:%s --> block", name)
	}
	_, block, _ := strings.Cut(after, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var steps []step
	for _, l := range strings.Split(block, "\n") {
		switch {
		case strings.HasPrefix(l, "#> "):
			if len(steps) == 0 {
				t.Fatalf("session %s: output before any command: %q", name, l)
			}
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, strings.TrimPrefix(l, "#> "))
		case strings.HasPrefix(l, "#"), strings.TrimSpace(l) == "":
		default:
			steps = append(steps, step{send: l})
		}
	}
	if len(steps) < 5 {
		t.Fatalf("session %s has only %d steps", name, len(steps))
	}
	return steps
}

// README sessions talk to vw stream on localhost:8888 and the relay on
// localhost:8080; the tests run them on free ports instead.
func localize(s string, stream, relay *proc) string {
	s = strings.ReplaceAll(s, "localhost:8888", stream.addr)
	return strings.ReplaceAll(s, "localhost:8080", relay.addr)
}

// mintToken returns a relay token made by `vw token`, as a lab hoster gets
// one.
func mintToken(t *testing.T) string {
	t.Helper()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := vwCmd(t, []string{"VW_RELAY_SECRET=" + base64.StdEncoding.EncodeToString(secret)}, "token", "--path", "lab1/", "--scope", "read,write", "--ttl", "1h")
	cmd.Stdout = &out
	p := testutil.Start(t, cmd)
	err := p.Wait(t, 10*time.Second)
	tok := strings.TrimSpace(out.String())
	if err != nil || strings.Count(tok, ".") != 2 {
		t.Fatalf("vw token: %v %q\n%s", err, tok, p.Output())
	}
	return tok
}

// noToken fails the test if any of outs holds tok.
func noToken(t *testing.T, tok string, outs ...string) {
	t.Helper()
	for _, o := range outs {
		if strings.Contains(o, tok) {
			t.Fatalf("the relay token leaked:\n%s", o)
		}
	}
}

// TestREADMECurlSession runs the README's curl session, command by command
// with real curl, against a real vw stream and vw relay, and checks each
// answer is exactly what the README shows. The session's $TOKEN and the
// apiRule's token are tokens minted by vw token: no answer and no log line
// of vw stream holds them.
func TestREADMECurlSession(t *testing.T) {
	curl := testutil.NeedTool(t, "curl")
	tok := mintToken(t)
	relay := relayProc(t)
	stream := streamProc(t, "VW_API=ws://"+relay.addr+"/bi/lab1/api", "VW_API_RELAY_TOKEN="+tok)
	var outs []string
	for _, s := range readmeSession(t, "curl") {
		cmdline := localize(s.send, stream, relay)
		if !strings.HasPrefix(cmdline, "curl ") {
			t.Fatalf("curl session line is not a curl command: %q", s.send)
		}
		cmd := exec.Command("sh", "-c", curl+cmdline[len("curl"):])
		cmd.Env = append(os.Environ(), "TOKEN="+tok)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", cmdline, err)
		}
		outs = append(outs, string(out))
		got := lines(string(out))
		want := make([]string, len(s.want))
		for i, w := range s.want {
			want[i] = localize(w, stream, relay)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s\n got: %s\nwant: %s", s.send, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if !strings.Contains(strings.Join(outs, ""), `"token":"set"`) {
		t.Fatal("the session set no token: it tests nothing about tokens")
	}
	noToken(t, tok, append(outs, stream.logText())...)
}

// TestREADMEWebsocatSession plays the README's websocat session as an
// operator would: a websocket client on the relay's bidirectional route,
// driving vw stream through VW_API. (websocat itself is not packaged for
// Debian; this client sends and reads exactly what it would.)
func TestREADMEWebsocatSession(t *testing.T) {
	tok := mintToken(t)
	relay := relayProc(t)
	stream := streamProc(t, "VW_API=ws://"+relay.addr+"/bi/lab1/api", "VW_API_RELAY_TOKEN="+tok)
	steps := readmeSession(t, "websocat")
	connect := localize(steps[0].send, stream, relay)
	url, ok := strings.CutPrefix(connect, "websocat ")
	if !ok {
		t.Fatalf("websocat session does not start with websocat: %q", steps[0].send)
	}
	op := dialWS(t, url, nil)
	// vw stream's apiRule connects to the relay on its own schedule: wait
	// until the relay shows it beside the operator on the route.
	waitPeers(t, relay, "bi/lab1/api", 2)

	for _, s := range steps[1:] {
		op.send(t, localize(s.send, stream, relay))
		m := op.next(t, 5*time.Second)
		if m.typ != websocket.TextMessage {
			t.Fatalf("%s: reply is not a text message", s.send)
		}
		if want := localize(s.want[0], stream, relay); string(m.data) != want {
			t.Fatalf("%s\n got: %s\nwant: %s", s.send, m.data, want)
		}
		noToken(t, tok, string(m.data))
	}
	noToken(t, tok, stream.logText())
}
