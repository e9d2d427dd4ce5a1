package jsmpeg

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// TestAccessPointInChromium: both player pages (jsmpeg's and the H.264
// one) take the token out of the link, present it to the access point and
// show its refusal the same way, from the one script they share
// (vw-page.js): a token the access point refuses is "forbidden" with its
// reason, and no token at all is "needs-token".
func TestAccessPointInChromium(t *testing.T) {
	testutil.NeedJSMpeg(t)
	testutil.NeedMSE(t)
	b := browser.Start(t)
	p := New(Config{AccessPath: "/access"})
	var (
		mu   sync.Mutex
		auth []string // the Authorization of every request to the access point
	)
	mux := http.NewServeMux()
	mux.Handle("/", p.Handler())
	mux.HandleFunc("POST /access/out/cam", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"this stream needs a token"}`))
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":"the token does not cover cam"}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, codec := range []string{CodecMPEG1, CodecH264} {
		t.Run(codec, func(t *testing.T) {
			page := b.Open(srv.URL + "/play/cam?codec=" + codec + "#token=secret-token")
			v := page.WaitPlayer(10*time.Second, "showed the refusal", func(v browser.Player) bool {
				return v.State == "forbidden" && v.Status == http.StatusForbidden && strings.Contains(v.Detail, "does not cover cam")
			})
			if v.Codec != codec {
				t.Errorf("the page's codec is %q, want %q", v.Codec, codec)
			}
			if href, err := browser.Eval[string](page, `location.href`); err != nil || strings.Contains(href, "secret-token") {
				t.Errorf("the address bar reads %q (%v): the token must leave it", href, err)
			}
			if text, err := browser.Eval[string](page, `document.getElementById("notice").innerText`); err != nil ||
				!strings.Contains(text, "does not allow watching") || !strings.Contains(text, "does not cover cam") {
				t.Errorf("the notice reads %q (%v)", text, err)
			}
			page.Close()

			bare := b.Open(srv.URL + "/play/cam?codec=" + codec)
			bare.WaitPlayer(10*time.Second, "said that the stream needs a token", func(v browser.Player) bool {
				return v.State == "needs-token" && v.Status == http.StatusUnauthorized
			})
			bare.Close()
		})
	}
	mu.Lock()
	defer mu.Unlock()
	var bearer int
	for _, a := range auth {
		if a == "Bearer secret-token" {
			bearer++
		} else if a != "" {
			t.Errorf("the access point was sent %q", a)
		}
	}
	if bearer < 2 {
		t.Errorf("the token reached the access point %d times, want once per page at least: %q", bearer, auth)
	}
}
