package jsmpeg

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// get is a GET with header name, value pairs.
func get(t *testing.T, url string, header ...string) (testutil.Resp, string) {
	t.Helper()
	r := testutil.Do(t, testutil.Req{URL: url, Header: header})
	return r, r.Body
}

func serve(t *testing.T, p *Pages) string {
	t.Helper()
	s := httptest.NewServer(p.Handler())
	t.Cleanup(s.Close)
	return s.URL
}

func TestPlayerPage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		path   string
		status int
		want   []string
	}{
		{"relay", Config{AccessPath: "/access/"}, "/play/lab1/cam", 200, []string{`"wsPath":"/out/lab1/cam"`, `"stream":"lab1/cam"`,
			`"accessPath":"/access"`, "<title>lab1/cam · vw relay</title>"}},
		{"vw stream preview", Config{Title: "vw stream", WSPath: "/ws/{stream}"}, "/play/stream/front/large", 200,
			[]string{`"wsPath":"/ws/stream/front/large"`, `"accessPath":""`, "vw stream"}},
		{"own prefix", Config{PlayPrefix: "/preview"}, "/preview/video0", 200, []string{`"wsPath":"/out/video0"`}},
		{"no name", Config{}, "/play/", 404, nil},
		{"trailing slash", Config{}, "/play/a/", 404, nil},
		{"cleaned by redirect", Config{}, "/play/a//b", 200, []string{`"wsPath":"/out/a/b"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := serve(t, New(tc.cfg))
			resp, body := get(t, url+tc.path)
			if resp.Status != tc.status {
				t.Fatalf("GET %s: %d, want %d", tc.path, resp.Status, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("the page lacks %s", w)
				}
			}
		})
	}
}

func TestNamesAreEscaped(t *testing.T) {
	url := serve(t, New(Config{Streams: func() []Stream {
		return []Stream{{Name: `<b>x</b>"`, Viewers: 1}}
	}}))
	_, body := get(t, url+"/play/<script>alert(1)<%2Fscript>")
	if strings.Contains(body, "<script>alert") {
		t.Fatal("the player page puts the stream name in unescaped")
	}
	_, body = get(t, url+"/")
	if strings.Contains(body, "<b>x</b>") {
		t.Fatal("the index puts a stream name in unescaped")
	}
}

func TestIndex(t *testing.T) {
	since := time.Now().Add(-time.Minute)
	url := serve(t, New(Config{Title: "my relay", Streams: func() []Stream {
		return []Stream{{Name: "lab1/cam", Viewers: 3, BitRate: 4.2e6, Since: since}, {Name: "lab2", Viewers: 0}}
	}}))
	_, body := get(t, url+"/")
	for _, w := range []string{`href="/play/lab1/cam"`, `href="/play/lab2"`, "my relay", "4.2 Mbit/s", ">3<"} {
		if !strings.Contains(body, w) {
			t.Errorf("the index lacks %s", w)
		}
	}
	url = serve(t, New(Config{}))
	if _, body := get(t, url+"/"); !strings.Contains(body, "No stream is live") {
		t.Error("an empty index does not say that no stream is live")
	}
}

// TestLibrary checks the embedded library is served (cached by ETag), and
// what the pages say when a build lacks it.
func TestLibrary(t *testing.T) {
	if LibraryAvailable() != testutil.JSMpegPresent() {
		t.Fatalf("LibraryAvailable() is %v but testutil.JSMpegPresent() is %v: the tests' check disagrees with the build", LibraryAvailable(), testutil.JSMpegPresent())
	}
	p := New(Config{})
	t.Run("embedded", func(t *testing.T) {
		testutil.NeedJSMpeg(t)
		url := serve(t, p)
		resp, body := get(t, url+"/lib/"+LibraryFile)
		if resp.Status != 200 || !strings.Contains(body, "JSMpeg") || resp.Header.Get("ETag") == "" {
			t.Fatalf("GET the library: %d, %d bytes, ETag %q", resp.Status, len(body), resp.Header.Get("ETag"))
		}
		resp, _ = get(t, url+"/lib/"+LibraryFile, "If-None-Match", resp.Header.Get("ETag"))
		if resp.Status != http.StatusNotModified {
			t.Fatalf("a cached library: %d, want 304", resp.Status)
		}
	})
	// Built without the library: the pages say so and how to fix it.
	p.lib = nil
	url := serve(t, p)
	resp, body := get(t, url+"/lib/"+LibraryFile)
	if resp.Status != 404 || !strings.Contains(body, "npm ci") {
		t.Fatalf("the missing library: %d %q", resp.Status, body)
	}
	for _, path := range []string{"/play/x", "/"} {
		if _, body := get(t, url+path); !strings.Contains(body, "library is missing") || !strings.Contains(body, "npm ci") {
			t.Errorf("%s does not say that the library is missing and how to get it", path)
		}
	}
}

// TestMissingLibraryInChromium checks what a person sees when vw was built
// without the library: the page says so instead of failing silently.
func TestMissingLibraryInChromium(t *testing.T) {
	b := browser.Start(t)
	p := New(Config{})
	p.lib = nil
	url := serve(t, p)
	page := b.Open(url + "/play/cam")
	page.WaitPlayer(10*time.Second, "reported the missing library", func(v browser.Player) bool { return v.State == "no-library" })
	text, err := browser.Eval[string](page, `document.body.innerText`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "library is missing") || !strings.Contains(text, "npm ci") {
		t.Fatalf("the page reads:\n%s", text)
	}
	page.Screenshot("no-library")
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"cam", true}, {"lab1/cam/front", true}, {"a.b-c_d", true},
		{"", false}, {"/cam", false}, {"cam/", false}, {"a//b", false}, {"a/../b", false}, {"./a", false}, {"..", false},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestDirectConnectInChromium opens a player with no access point (as vw
// stream's preview serves it) from a link with a token in its fragment: the
// page connects straight to its websocket path, and the token leaves the
// address bar and never reaches the server.
func TestDirectConnectInChromium(t *testing.T) {
	testutil.NeedJSMpeg(t)
	b := browser.Start(t)
	p := New(Config{Title: "vw stream", WSPath: "/ws/{stream}"})
	var (
		mu     sync.Mutex
		seen   []string // every request line the server saw
		conns  []*websocket.Conn
		closed bool
		wg     sync.WaitGroup
	)
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	upgrader := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.Handle("/", p.Handler())
	mux.HandleFunc("/ws/", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		if closed {
			mu.Unlock()
			_ = c.Close()
			return
		}
		conns = append(conns, c)
		wg.Add(1)
		mu.Unlock()
		defer wg.Done()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RequestURI)
		mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	page := b.Open(srv.URL + "/play/cam#token=secret-token")
	page.WaitPlayer(10*time.Second, "connected to /ws/cam", func(v browser.Player) bool {
		return v.Connects > 0 && v.State == "waiting"
	})
	if href, err := browser.Eval[string](page, `location.href`); err != nil || href != srv.URL+"/play/cam" {
		t.Errorf("the address bar reads %q (%v), want the token gone", href, err)
	}
	mu.Lock()
	defer mu.Unlock()
	ws := false
	for _, uri := range seen {
		if strings.Contains(uri, "secret-token") {
			t.Errorf("the server saw the token in %q", uri)
		}
		ws = ws || uri == "/ws/cam"
	}
	if !ws {
		t.Errorf("the page never connected to /ws/cam; the server saw %q", seen)
	}
}
