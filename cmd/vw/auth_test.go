package main

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
)

// mint runs `vw token` as an operator would.
func mint(t *testing.T, secretFile string, args ...string) string {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command(vwBin, append([]string{"token"}, args...)...)
	cmd.Env = []string{"VW_RELAY_SECRET_FILE=" + secretFile}
	cmd.Stdout = &out
	p := testutil.Start(t, cmd)
	if err := p.Wait(t, 10*time.Second); err != nil {
		t.Fatalf("vw token %v: %v\n%s", args, err, p.Output())
	}
	return strings.TrimSpace(out.String())
}

// dialStatus tries a websocket handshake and returns the HTTP status; a
// websocket it opens is closed at once.
func dialStatus(t *testing.T, url, token string) int {
	t.Helper()
	c, status := testutil.Handshake(t, url, token)
	if c != nil {
		c.Close()
	}
	return status
}

// TestSecuredRelay deploys as the README's "Deploying safely" says: a relay
// with a secret, tokens minted with vw token, vw stream presenting them. The
// lab's stream reaches viewers with a read token and nobody else; the
// control route answers only an operator holding both scopes; a destination
// without a token is refused, and vw stream says so.
func TestSecuredRelay(t *testing.T) {
	secret := secretFile(t, "0123456789abcdef0123456789abcdef-test-secret")
	publish := mint(t, secret, "--path", "lab1/", "--scope", "write", "--ttl", "1h")
	control := mint(t, secret, "--path", "lab1/", "--scope", "read,write", "--ttl", "1h")
	watchTok := mint(t, secret, "--path", "lab1/", "--scope", "read", "--ttl", "1h")
	lab2 := mint(t, secret, "--path", "lab2/", "--scope", "read,write", "--ttl", "1h")

	relay := relayProc(t, "VW_RELAY_SECRET_FILE="+secret)
	relay.statsToken = mint(t, secret, "--path", "/", "--scope", "admin", "--ttl", "1h")
	stream := streamProc(t, "VW_API=ws://"+relay.addr+"/bi/lab1/api", "VW_API_RELAY_TOKEN="+control)
	ffmpeg(t, "video", "http://"+stream.addr+"/ts/video0")
	postRule(t, stream, "/api/destinations", `{"stream":"video0","destination":"ws://`+relay.addr+`/in/lab1/cam","id":"0","token":"`+publish+`"}`)

	out := "ws://" + relay.addr + "/out/lab1/cam"
	for _, c := range []struct {
		name, url, token string
		status           int
	}{
		{"viewer without a token", out, "", 401},
		{"viewer with a garbage token", out, "not-a-token", 401},
		{"viewer with another lab's token", out, lab2, 403},
		{"publisher with a read token", "ws://" + relay.addr + "/in/lab1/cam", watchTok, 403},
		{"operator without a token", "ws://" + relay.addr + "/bi/lab1/api", "", 401},
		{"operator with a read-only token", "ws://" + relay.addr + "/bi/lab1/api", watchTok, 403},
		{"operator of another lab", "ws://" + relay.addr + "/bi/lab1/api", lab2, 403},
	} {
		if got := dialStatus(t, c.url, c.token); got != c.status {
			t.Errorf("%s: status %d, want %d", c.name, got, c.status)
		}
	}

	v := watchURL(t, out, http.Header{"Authorization": {"Bearer " + watchTok}})
	v.grows(t, 20_000, 10*time.Second, "a viewer with a read token")

	op := dialWS(t, "ws://"+relay.addr+"/bi/lab1/api", http.Header{"Authorization": {"Bearer " + control}})
	waitPeers(t, relay, "bi/lab1/api", 2)
	op.send(t, `{"verb":"healthcheck"}`)
	if m := op.next(t, 5*time.Second); string(m.data) != `{"healthcheck":"ok"}` {
		t.Fatalf("control API through the secured relay: %s", m.data)
	}

	// A destination without a token is refused at the handshake, and vw
	// stream's log says why.
	postRule(t, stream, "/api/destinations", `{"stream":"video0","destination":"ws://`+relay.addr+`/in/lab1/notoken","id":"1"}`)
	testutil.Eventually(t, 10*time.Second, func() bool {
		for _, l := range lines(stream.logText()) {
			if strings.Contains(l, "handshake refused: 401") && strings.Contains(l, "id=1") {
				return true
			}
		}
		return false
	}, "vw stream does not log the relay's refusal:\n%s", stream.logText())
}
