package jsmpeg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// H.264/AAC streams play through the browser's own decoder (Media Source
// Extensions) with the mpegts.js library, on a page of their own that looks
// and behaves like the jsmpeg one. The server picks the page by the stream's
// codec (Config.Codec, or ?codec= in the address); each page checks the
// first PMT on its websocket (assets/vw-codec.js) and swaps itself for the
// other when the stream turns out to be of the other family.

// Codecs as Config.Codec names them: the codec family of a stream.
const (
	CodecMPEG1 = "mpeg1"
	CodecH264  = "h264"
)

// MSELibraryFile is the name of the mpegts.js library in assets/, as the
// npm package ships it.
const MSELibraryFile = "mpegts.js"

// Our own scripts in assets/: the codec sniffer and the rest of what both
// pages share (the token, the access point, the status line), and the MSE
// player.
const (
	codecScript = "vw-codec.js"
	pageScript  = "vw-page.js"
	mseScript   = "vw-mse.js"
)

// pageTemplate holds what both pages' HTML shares: the head and its style,
// the header, the overlay and the status line.
const pageTemplate = "templates/page.html"

// asset is an embedded file served with a strong ETag.
type asset struct {
	name string
	data []byte
	etag string
}

// loadAsset returns the embedded file name, or an asset with no data when
// the build did not copy it in.
func loadAsset(name string) asset {
	b, err := fs.ReadFile(files, "assets/"+name)
	if err != nil {
		return asset{name: name}
	}
	sum := sha256.Sum256(b)
	return asset{name: name, data: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// ServeHTTP serves the script, or a 404 whose body says how to get it.
func (a asset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	if a.data == nil {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("// " + a.name + " is missing from this build: run `make` (npm ci), then rebuild vw.\n"))
		return
	}
	w.Header().Set("ETag", a.etag)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.data))
}

// msePage is the H.264 side of Pages, and serves the scripts both pages
// load.
type msePage struct {
	tmpl   *template.Template
	lib    asset
	codec  asset
	page   asset
	player asset
	dir    string // where the scripts are served, next to the jsmpeg library
}

func newMSEPage(funcs template.FuncMap, libPath string) msePage {
	return msePage{
		tmpl:   template.Must(template.New("mse.html").Funcs(funcs).ParseFS(files, "templates/mse.html", pageTemplate)),
		lib:    loadAsset(MSELibraryFile),
		codec:  loadAsset(codecScript),
		page:   loadAsset(pageScript),
		player: loadAsset(mseScript),
		dir:    path.Dir(libPath) + "/",
	}
}

// mseData is what the MSE page's template sees: the player page's data,
// with the mpegts.js library in the jsmpeg library's place.
type mseData struct {
	playerData
	PlayerJS string
}

func (m msePage) data(d playerData) mseData {
	d.Library = m.lib.data != nil
	d.Script.Library = d.Library
	d.Script.LibPath = m.dir + MSELibraryFile
	return mseData{playerData: d, PlayerJS: m.dir + mseScript}
}

// routes adds the scripts to the pages' mux.
func (m msePage) routes(mux *http.ServeMux) {
	for _, a := range []asset{m.lib, m.codec, m.page, m.player} {
		mux.Handle("GET "+m.dir+a.name, a)
	}
}

// LibraryAvailableMSE reports whether the mpegts.js library is embedded in
// this build.
func LibraryAvailableMSE() bool { return loadAsset(MSELibraryFile).data != nil }

// pick returns the codec whose page to serve: the one asked for in the
// address, else the one Config.Codec knows, else MPEG-1.
func (p *Pages) pick(r *http.Request, stream string) string {
	switch c := r.URL.Query().Get("codec"); c {
	case CodecMPEG1, CodecH264:
		return c
	}
	if p.cfg.Codec != nil && p.cfg.Codec(stream) == CodecH264 {
		return CodecH264
	}
	return CodecMPEG1
}
