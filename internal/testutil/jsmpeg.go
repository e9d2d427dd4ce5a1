package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// JSMpegAsset is where the build puts the jsmpeg library for package
// jsmpeg to embed, relative to the module root.
const JSMpegAsset = "jsmpeg/assets/jsmpeg-player.umd.min.js"

// JSMpegPresent reports whether the jsmpeg library is in place, and so
// embedded in what this test binary built. (Package jsmpeg's own tests use
// this too, so it cannot ask package jsmpeg; its test checks that the two
// agree.)
func JSMpegPresent() bool {
	root, err := ModuleRoot()
	if err != nil {
		return false
	}
	fi, err := os.Stat(filepath.Join(root, JSMpegAsset))
	return err == nil && fi.Size() > 0
}

// NeedJSMpeg skips a test that plays video without the jsmpeg library, or
// fails it in CI, where the library must be there.
func NeedJSMpeg(t testing.TB) {
	t.Helper()
	if JSMpegPresent() {
		return
	}
	const help = "the jsmpeg library is not in " + JSMpegAsset + ": run `make` (it runs `npm ci` and copies it there)"
	if InCI() {
		t.Fatal(help + "; it is required in CI (CI=true)")
	}
	t.Skip(help)
}
