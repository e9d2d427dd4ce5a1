package main

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
)

// TestDenySurvivesRestart: a token denied on a relay stays refused by the
// next relay process started on the same VW_RELAY_STATE, while other
// tokens keep working; the revoked viewer is closed at once.
func TestDenySurvivesRestart(t *testing.T) {
	secret := secretFile(t, "a-test-secret-for-vw-relay-restarts")
	env := []string{"VW_RELAY_SECRET_FILE=" + secret, "VW_RELAY_STATE=" + filepath.Join(t.TempDir(), "state", "relay.json")}
	revoked := mint(t, secret, "--path", "lab1/", "--scope", "read", "--ttl", "1h")
	kept := mint(t, secret, "--path", "lab1/", "--scope", "read", "--ttl", "1h")
	admin := mint(t, secret, "--path", "lab1/", "--scope", "admin", "--ttl", "1h")

	first := relayProc(t, env...)
	out := "ws://" + first.addr + "/out/lab1/cam"
	v := dialWS(t, out, http.Header{"Authorization": {"Bearer " + revoked}})
	deny := testutil.Req{Method: http.MethodPost, URL: first.baseURL + "/api/deny", Body: fmt.Sprintf(`{"token":%q}`, revoked), Token: admin}
	if r := testutil.Do(t, deny); r.Status != http.StatusOK {
		t.Fatalf("deny: %d %s", r.Status, r.Body)
	}
	select {
	case <-v.done:
		if ce, ok := v.err.(*websocket.CloseError); !ok || ce.Text != "token revoked" {
			t.Fatalf("the revoked viewer ended with %v, want close \"token revoked\"", v.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked viewer is still connected")
	}
	if err := first.stop(t); err != nil {
		t.Fatalf("stopping the first relay: %v", err)
	}

	second := relayProc(t, env...)
	out = "ws://" + second.addr + "/out/lab1/cam"
	if st := dialStatus(t, out, revoked); st != http.StatusUnauthorized {
		t.Fatalf("the revoked token after a restart: %d, want 401", st)
	}
	if st := dialStatus(t, out, kept); st != http.StatusSwitchingProtocols {
		t.Fatalf("another token after a restart: %d, want 101", st)
	}
	if !strings.Contains(second.logText(), "deny list restored") {
		t.Errorf("the relay does not say it restored the deny list:\n%s", second.logText())
	}
}

// TestWeakSecretRefused: vw relay does not start with a secret that is
// long enough but guessable, and says why.
func TestWeakSecretRefused(t *testing.T) {
	for _, s := range []string{strings.Repeat("a", 40), strings.Repeat("secret12", 5)} {
		// A relay that wrongly starts fails the wait instead of hanging.
		p := testutil.Start(t, vwCmd(t, []string{"VW_RELAY_SECRET=" + s}, "relay", "--listen", "127.0.0.1:0"))
		err := p.Wait(t, 10*time.Second)
		if out := p.Output(); err == nil || !strings.Contains(out, "relay secret looks weak") || !strings.Contains(out, "/dev/urandom") {
			t.Fatalf("vw relay with secret %q: %v\n%s", s, err, out)
		}
	}
}

// TestTokenWarnsRelayWideAdmin: vw token says so on stderr when it mints an
// admin token for every lab, and prints only the token on stdout.
func TestTokenWarnsRelayWideAdmin(t *testing.T) {
	secret := secretFile(t, "a-test-secret-for-vw-token-warnings")
	for _, tc := range []struct {
		args []string
		warn bool
	}{
		{[]string{"--path", "/", "--scope", "admin"}, true},
		{[]string{"--path", "/", "--scope", "read,admin"}, true},
		{[]string{"--path", "lab1/", "--scope", "admin"}, false},
		{[]string{"--path", "/", "--scope", "read"}, false},
	} {
		cmd := vwCmd(t, []string{"VW_RELAY_SECRET_FILE=" + secret}, append([]string{"token"}, tc.args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := testutil.Start(t, cmd).Wait(t, 10*time.Second); err != nil {
			t.Fatalf("vw token %v: %v\n%s", tc.args, err, stderr.String())
		}
		if warned := strings.Contains(stderr.String(), "relay-wide"); warned != tc.warn {
			t.Errorf("vw token %v: stderr %q, want a warning: %v", tc.args, stderr.String(), tc.warn)
		}
		if tok := strings.TrimSpace(stdout.String()); strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
			t.Errorf("vw token %v: stdout %q, want the token alone", tc.args, stdout.String())
		}
	}
}
