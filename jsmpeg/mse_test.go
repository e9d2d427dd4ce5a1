package jsmpeg

import (
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/browser"
	"github.com/vwlab/vw/internal/testutil"
)

// TestPagePerCodec: /play/{x} serves the MSE page for a stream Config.Codec
// knows as H.264, the jsmpeg page otherwise; ?codec= in the address wins
// (the pages use it to hand over to each other).
func TestPagePerCodec(t *testing.T) {
	codecs := map[string]string{"h": CodecH264, "m": CodecMPEG1}
	url := serve(t, New(Config{Codec: func(s string) string { return codecs[s] }}))
	for _, tc := range []struct {
		path string
		mse  bool
	}{
		{"/play/h", true}, {"/play/m", false}, {"/play/unknown", false},
		{"/play/m?codec=h264", true}, {"/play/h?codec=mpeg1", false}, {"/play/h?codec=bogus", true},
	} {
		_, body := get(t, url+tc.path)
		if mse := strings.Contains(body, `src="/lib/vw-mse.js"`); mse != tc.mse {
			t.Errorf("%s: MSE page %v, want %v", tc.path, mse, tc.mse)
		}
		for _, script := range []string{codecScript, pageScript} {
			if !strings.Contains(body, `src="/lib/`+script+`"`) {
				t.Errorf("%s: the page does not load %s", tc.path, script)
			}
		}
	}
	// Without a hint, every page starts as jsmpeg's.
	url = serve(t, New(Config{}))
	if _, body := get(t, url+"/play/h"); strings.Contains(body, "vw-mse.js") {
		t.Error("with no codec known the MSE page was served")
	}
}

func TestMSEScripts(t *testing.T) {
	p := New(Config{})
	url := serve(t, p)
	for _, name := range []string{codecScript, pageScript, mseScript} {
		resp, body := get(t, url+"/lib/"+name)
		if resp.Status != 200 || !strings.Contains(body, "vw") || resp.Header.Get("ETag") == "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
			t.Errorf("GET /lib/%s: %d, %d bytes, %v", name, resp.Status, len(body), resp.Header)
		}
	}
	if LibraryAvailableMSE() != testutil.MSEPresent() {
		t.Fatalf("LibraryAvailableMSE() is %v but testutil.MSEPresent() is %v: the tests' check disagrees with the build", LibraryAvailableMSE(), testutil.MSEPresent())
	}
	t.Run("embedded", func(t *testing.T) {
		testutil.NeedMSE(t)
		if resp, body := get(t, url+"/lib/"+MSELibraryFile); resp.Status != 200 || !strings.Contains(body, "mpegts") {
			t.Errorf("GET the mpegts.js library: %d, %d bytes", resp.Status, len(body))
		}
	})
	// Built without mpegts.js: the H.264 page and the library's URL say so.
	p.mse.lib = asset{name: MSELibraryFile}
	url = serve(t, p)
	if resp, body := get(t, url+"/lib/"+MSELibraryFile); resp.Status != 404 || !strings.Contains(body, "npm ci") {
		t.Errorf("the missing mpegts.js: %d %q", resp.Status, body)
	}
	if _, body := get(t, url+"/play/x?codec=h264"); !strings.Contains(body, "mpegts.js player library is missing") {
		t.Error("the H.264 page does not say that mpegts.js is missing")
	}
}

// TestMissingMSELibraryInChromium: built without mpegts.js, the H.264
// page says so in the state line, as the jsmpeg page does for its library.
func TestMissingMSELibraryInChromium(t *testing.T) {
	b := browser.Start(t)
	p := New(Config{})
	p.mse.lib = asset{name: MSELibraryFile}
	url := serve(t, p)
	page := b.Open(url + "/play/cam?codec=h264")
	v := page.WaitPlayer(10*time.Second, "reported the missing library", func(v browser.Player) bool { return v.State == "no-library" })
	if v.Codec != CodecH264 {
		t.Errorf("the page's codec is %q", v.Codec)
	}
}

func TestIndexCodec(t *testing.T) {
	url := serve(t, New(Config{Streams: func() []Stream {
		return []Stream{{Name: "a", Codec: "H.264/AAC"}, {Name: "b"}}
	}}))
	_, body := get(t, url+"/")
	if !strings.Contains(body, "<td>H.264/AAC</td>") || !strings.Contains(body, "unknown yet") {
		t.Errorf("the index does not show each stream's codec:\n%s", body)
	}
}
