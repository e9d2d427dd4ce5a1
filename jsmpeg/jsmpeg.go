// Package jsmpeg owns what a browser needs to watch a stream: the player page
// (one per stream, built on the jsmpeg library), the index page listing live
// streams, and the jsmpeg library itself, all embedded in the binary and
// served over HTTP.
//
// The library is not in the repository: the build copies it from the npm
// package @cycjimmy/jsmpeg-player (pinned in package-lock.json) into
// assets/. Without it everything still builds and the player page tells the
// visitor that the library is missing and how to get it.
//
// The same pages serve the relay (player pages play /out/{stream}) and
// vw stream's local preview (/ws/{stream}): the websocket path is a parameter.
//
// On a relay with auth, a private stream's link is /play/{stream}#token=…:
// the fragment never reaches a server, the page takes the token out of the
// address bar at once, and before each connection it trades the token at
// the relay's access point (POST {AccessPath}{WSPath}, Authorization:
// Bearer) for a websocket URL carrying a one-time code.
package jsmpeg

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// LibraryFile is the name of the jsmpeg library in assets/, as the npm
// package ships it.
const LibraryFile = "jsmpeg-player.umd.min.js"

// LibraryHelp tells a person how to put the library in place (the pages say
// the same in HTML).
const LibraryHelp = "run `make` (it runs `npm ci` and copies node_modules/@cycjimmy/jsmpeg-player/dist/" +
	LibraryFile + " into jsmpeg/assets/), then rebuild vw"

//go:embed assets templates
var files embed.FS

// library returns the embedded library, or nil when the build did not copy
// it in.
func library() []byte {
	b, err := fs.ReadFile(files, "assets/"+LibraryFile)
	if err != nil {
		return nil
	}
	return b
}

// LibraryAvailable reports whether the jsmpeg library is embedded in this
// build.
func LibraryAvailable() bool { return library() != nil }

// Config says where things live. Zero fields take the defaults of the relay.
type Config struct {
	// Title names the server on its pages, e.g. "vw relay".
	Title string
	// WSPath is the websocket path a player page connects to, on the host
	// that served the page; "{stream}" stands for the stream's name.
	// Default "/out/{stream}"; vw stream's preview uses "/ws/{stream}".
	WSPath string
	// PlayPrefix is the path of player pages; the rest of the path is the
	// stream. Default "/play/".
	PlayPrefix string
	// LibPath is where the library is served. Default "/lib/" + LibraryFile.
	LibPath string
	// AccessPath is the relay's access point (auth.AccessPrefix, "/access"):
	// before each connection the player POSTs to AccessPath+WSPath, with the
	// token from its URL fragment if any, and connects to the "uri" it
	// answers. Empty means there is none: the player connects to WSPath.
	AccessPath string
	// Streams lists the streams the index page shows. Nil shows none.
	Streams func() []Stream
	// Codec, if set, names a stream's codec family (CodecMPEG1, CodecH264,
	// "" when unknown), so that its player page is the right one at once
	// (see mse.go).
	Codec func(stream string) string
}

// Stream is one entry of the index page.
type Stream struct {
	// Name is the stream as the player page takes it (without /out/).
	Name string
	// Viewers is how many are watching now.
	Viewers int
	// BitRate is the incoming rate in bits per second.
	BitRate float64
	// Since is when the stream started.
	Since time.Time
	// Codec is the stream's codec family for people ("H.264/AAC"), or "".
	Codec string
}

func (c Config) withDefaults() Config {
	if c.Title == "" {
		c.Title = "vw relay"
	}
	if c.WSPath == "" {
		c.WSPath = "/out/{stream}"
	}
	if c.PlayPrefix == "" {
		c.PlayPrefix = "/play/"
	}
	if !strings.HasSuffix(c.PlayPrefix, "/") {
		c.PlayPrefix += "/"
	}
	if c.LibPath == "" {
		c.LibPath = "/lib/" + LibraryFile
	}
	return c
}

// Pages serves the player page, the index page and the library.
type Pages struct {
	cfg     Config
	lib     []byte
	libETag string
	player  *template.Template
	index   *template.Template
	mse     msePage
}

// New returns the pages for cfg.
func New(cfg Config) *Pages {
	p := &Pages{cfg: cfg.withDefaults(), lib: library()}
	if p.lib != nil {
		sum := sha256.Sum256(p.lib)
		p.libETag = `"` + hex.EncodeToString(sum[:8]) + `"`
	}
	funcs := template.FuncMap{
		"ago":  ago,
		"rate": rate,
	}
	// The templates are compiled into the binary, so a parse error is a
	// build defect that every test of this package catches.
	p.player = template.Must(template.New("player.html").Funcs(funcs).ParseFS(files, "templates/player.html", pageTemplate))
	p.index = template.Must(template.New("index.html").Funcs(funcs).ParseFS(files, "templates/index.html"))
	p.mse = newMSEPage(funcs, p.cfg.LibPath)
	return p
}

// Handler serves all three: the index at "/", player pages under
// PlayPrefix, the library at LibPath. Anything else is 404.
func (p *Pages) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", p.Index())
	mux.Handle("GET "+p.cfg.PlayPrefix, p.Player())
	mux.Handle("GET "+p.cfg.LibPath, p.Library())
	p.mse.routes(mux)
	return mux
}

// PlayURL returns the path of the player page of a stream.
func (p *Pages) PlayURL(stream string) string { return p.cfg.PlayPrefix + stream }

// playerData is what the player page's template and script see.
type playerData struct {
	Title   string
	Stream  string
	Index   string
	Library bool
	Script  playerScript
	CodecJS string // the codec sniffer's path (mse.go)
	PageJS  string // the path of what both player pages' scripts share
}

// playerScript is handed to the page's script as JSON.
type playerScript struct {
	Stream     string `json:"stream"`
	WSPath     string `json:"wsPath"`
	AccessPath string `json:"accessPath"`
	LibPath    string `json:"libPath"`
	Library    bool   `json:"library"`
}

// Player serves the player page of the stream named by the rest of the
// path after PlayPrefix.
func (p *Pages) Player() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, p.cfg.PlayPrefix)
		if !ok || !ValidName(name) {
			http.Error(w, "no such stream name: want "+p.cfg.PlayPrefix+"{stream}, a clean path", http.StatusNotFound)
			return
		}
		d := playerData{
			Title:   p.cfg.Title,
			Stream:  name,
			Index:   "/",
			Library: p.lib != nil,
			CodecJS: p.mse.dir + codecScript,
			PageJS:  p.mse.dir + pageScript,
			Script: playerScript{
				Stream:     name,
				WSPath:     strings.ReplaceAll(p.cfg.WSPath, "{stream}", name),
				AccessPath: strings.TrimSuffix(p.cfg.AccessPath, "/"),
				LibPath:    p.cfg.LibPath,
				Library:    p.lib != nil,
			},
		}
		if p.pick(r, name) == CodecH264 {
			render(w, p.mse.tmpl, p.mse.data(d))
			return
		}
		render(w, p.player, d)
	})
}

type indexData struct {
	Title      string
	PlayPrefix string
	WSPath     string
	Library    bool
	Streams    []Stream
}

// Index serves the list of live streams, each linking to its player page.
func (p *Pages) Index() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var streams []Stream
		if p.cfg.Streams != nil {
			streams = p.cfg.Streams()
		}
		render(w, p.index, indexData{
			Title:      p.cfg.Title,
			PlayPrefix: p.cfg.PlayPrefix,
			WSPath:     p.cfg.WSPath,
			Library:    p.lib != nil,
			Streams:    streams,
		})
	})
}

// Library serves the jsmpeg library, or a 404 whose body explains how to
// get it.
func (p *Pages) Library() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.lib == nil {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("// The jsmpeg library is missing from this build: " + LibraryHelp + ".\n"))
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("ETag", p.libETag)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		http.ServeContent(w, r, LibraryFile, time.Time{}, bytes.NewReader(p.lib))
	})
}

// ValidName reports whether s can name a stream in a URL path: not empty,
// and already clean (no "//", "." or ".." segments, no trailing slash), so
// that one stream has one name.
func ValidName(s string) bool {
	return s != "" && !strings.HasPrefix(s, "/") && path.Clean("/"+s) == "/"+s
}

func render(w http.ResponseWriter, t *template.Template, data any) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		http.Error(w, "rendering the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

// ago formats how long ago t was, for people.
func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return time.Since(t).Round(time.Second).String()
}

// rate formats bits per second for people.
func rate(bps float64) string {
	switch {
	case bps >= 1e6:
		return strconv.FormatFloat(bps/1e6, 'f', 1, 64) + " Mbit/s"
	case bps >= 1e3:
		return strconv.FormatFloat(bps/1e3, 'f', 1, 64) + " kbit/s"
	default:
		return strconv.FormatFloat(bps, 'f', 0, 64) + " bit/s"
	}
}
