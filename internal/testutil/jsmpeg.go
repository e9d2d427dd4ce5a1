package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// Where the build puts the player libraries for package jsmpeg to embed,
// relative to the module root: jsmpeg (MPEG-1/MP2) and mpegts.js (H.264/AAC
// through Media Source Extensions).
const (
	JSMpegAsset = "jsmpeg/assets/jsmpeg-player.umd.min.js"
	MSEAsset    = "jsmpeg/assets/mpegts.js"
)

// JSMpegPresent reports whether the jsmpeg library is in place, and so
// embedded in what this test binary built. (Package jsmpeg's own tests use
// this too, so it cannot ask package jsmpeg; its test checks that the two
// agree.)
func JSMpegPresent() bool { return assetPresent(JSMpegAsset) }

// MSEPresent is JSMpegPresent for mpegts.js.
func MSEPresent() bool { return assetPresent(MSEAsset) }

func assetPresent(path string) bool {
	root, err := ModuleRoot()
	if err != nil {
		return false
	}
	fi, err := os.Stat(filepath.Join(root, path))
	return err == nil && fi.Size() > 0
}

// NeedJSMpeg skips a test that plays MPEG-1 without the jsmpeg library, or
// fails it in CI, where the library must be there.
func NeedJSMpeg(t testing.TB) {
	t.Helper()
	if !JSMpegPresent() {
		Unavailable(t, "the jsmpeg library is not in %s: run `make` (it runs `npm ci` and copies it there)", JSMpegAsset)
	}
}

// NeedMSE is NeedJSMpeg for a test that plays H.264 with mpegts.js.
func NeedMSE(t testing.TB) {
	t.Helper()
	if !MSEPresent() {
		Unavailable(t, "mpegts.js is not in %s: run `make` (it runs `npm ci` and copies it there)", MSEAsset)
	}
}
