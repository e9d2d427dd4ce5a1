package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// TestClusterAuth: with tokens on (every relay has the same relay secret),
// a deny on C closes the token's connection on A within a second, a relay
// started after the deny refuses the token, and a one-time code from A's
// access point opens the stream on B once and never again anywhere.
func TestClusterAuth(t *testing.T) {
	secret := secretFile(t, "relay-secret-for-the-cluster-e2e-3c8f0a")
	c := newTestCluster(t, "VW_RELAY_SECRET_FILE="+secret)
	c.token = mint(t, secret, "--path", "/", "--scope", "admin", "--ttl", "1h")
	a := c.start("a", nil)
	b := c.start("b", a)
	cc := c.start("c", a)
	waitMesh(t, a, b, cc)
	viewer := mint(t, secret, "--path", "lab1/", "--scope", "read", "--ttl", "1h")

	t.Run("a code from A works once on B", func(t *testing.T) {
		r := testutil.Do(t, testutil.Req{Method: http.MethodPost, URL: a.baseURL + "/access/out/lab1/cam", Token: viewer})
		if r.Status != http.StatusOK {
			t.Fatalf("access on A: %d %s", r.Status, r.Body)
		}
		var acc struct{ URI string }
		if err := json.Unmarshal([]byte(r.Body), &acc); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(acc.URI)
		if err != nil {
			t.Fatal(err)
		}
		code := url.QueryEscape(u.Query().Get("code"))
		if st := dialStatus(t, wsURL(b, "/out/lab1/cam?code="+code), ""); st != http.StatusSwitchingProtocols {
			t.Fatalf("A's code on B: %d, want the stream", st)
		}
		for _, r := range []*clusterRelay{b, a, cc} {
			if st := dialStatus(t, wsURL(r, "/out/lab1/cam?code="+code), ""); st != http.StatusUnauthorized {
				t.Errorf("A's code again on %s: %d, want 401", r.name, st)
			}
		}
	})

	t.Run("a deny on C", func(t *testing.T) {
		h := http.Header{"Authorization": {"Bearer " + viewer}}
		conn := testutil.Dial(t, wsURL(a, "/out/lab1/cam"), h) // the token on A before the deny
		closed := make(chan error, 1)
		go func() {
			_, _, err := conn.ReadMessage()
			closed <- err
		}()
		body, _ := json.Marshal(auth.DenyRequest{Token: viewer})
		r := testutil.Do(t, testutil.Req{Method: http.MethodPost, URL: cc.baseURL + auth.DenyPath, Token: c.token, Body: string(body)})
		if r.Status != http.StatusOK {
			t.Fatalf("deny on C: %d %s", r.Status, r.Body)
		}
		denied := time.Now()
		select {
		case err := <-closed:
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
				t.Errorf("A closed the connection with %v, want 1008 token revoked", err)
			}
			if d := time.Since(denied); d > time.Second {
				t.Errorf("A closed the connection %v after the deny on C, want within 1 s", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("A kept the denied token's connection")
		}
		d := c.start("d", b)
		if st := dialStatus(t, wsURL(d, "/out/lab1/cam"), viewer); st != http.StatusUnauthorized {
			t.Errorf("a relay started after the deny answers the token with %d, want 401", st)
		}
	})
}

// TestClusterSurvivesAKilledRelay: B (through which C joined) is killed
// with SIGKILL while A streams to viewers on A, B and C: A's and C's viewers
// lose nothing. B started again rejoins, and its viewers get the stream.
func TestClusterSurvivesAKilledRelay(t *testing.T) {
	c := newTestCluster(t)
	a, b, cc := c.chain()
	var keep []*websocket.Conn
	for range 5 {
		keep = append(keep, testutil.Dial(t, wsURL(a, "/out/lab1/cam"), nil), testutil.Dial(t, wsURL(cc, "/out/lab1/cam"), nil))
		testutil.Dial(t, wsURL(b, "/out/lab1/cam"), nil)
	}
	waitWatching(t, a, "/out/lab1/cam", map[string]int{"b": 5, "c": 5})
	done := readAllStreams(t, keep, 600)
	pub := testutil.Dial(t, wsURL(a, "/in/lab1/cam"), nil)
	publishAnd(t, pub, 600, 2048, 5*time.Millisecond, func(i int) {
		if i == 200 {
			b.kill() // a third of the way in
		}
	})
	done()

	c.restart(b)
	waitMesh(t, a, b, cc)
	late := testutil.Dial(t, wsURL(b, "/out/lab1/cam"), nil)
	waitWatching(t, a, "/out/lab1/cam", map[string]int{"b": 1})
	finish := readAllStreams(t, []*websocket.Conn{late}, 100)
	publish(t, testutil.Dial(t, wsURL(a, "/in/lab1/cam"), nil), 100, 2048, 5*time.Millisecond)
	finish()
}

// TestClusterBrowser: the player page on relay C plays, in Chromium, a
// stream that vw stream pushes (from real ffmpeg camera and microphone
// feeds) to relay A.
func TestClusterBrowser(t *testing.T) {
	testutil.NeedJSMpeg(t)
	br := browser.Start(t)
	a, _, cc := newTestCluster(t).chain()
	stream := streamProc(t)
	ffmpeg(t, "video", "http://"+stream.addr+"/ts/video0")
	ffmpeg(t, "audio", "http://"+stream.addr+"/ts/audio0")
	for _, rule := range []struct{ path, body string }{
		{"streams", `{"stream":"front","feeds":["video0","audio0"]}`},
		{"destinations", `{"stream":"front","destination":"` + wsURL(a, "/in/lab1/front") + `","id":"0"}`},
	} {
		if st, body := httpDo(t, http.MethodPost, stream.baseURL+"/api/"+rule.path, rule.body); st != http.StatusOK {
			t.Fatalf("POST %s: %d %s", rule.path, st, body)
		}
	}
	page := br.Open(cc.baseURL + "/play/lab1/front")
	p := page.WaitPlayer(30*time.Second, "played on C the stream pushed to A", func(p browser.Player) bool {
		return p.Frames > 50 && p.AudioFrames > 50
	})
	t.Logf("playing on C: %+v", p)
	page.Screenshot("cluster-c")
}
