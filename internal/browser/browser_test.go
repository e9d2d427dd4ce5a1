package browser

import (
	"os"
	"path/filepath"
	"testing"
)

func TestArtifactDir(t *testing.T) {
	d := filepath.Join(t.TempDir(), "a", "b")
	t.Setenv("VW_ARTIFACTS", d)
	if got := ArtifactDir(t); got != d {
		t.Fatalf("ArtifactDir = %q, want $VW_ARTIFACTS %q", got, d)
	}
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		t.Fatalf("$VW_ARTIFACTS was not created: %v", err)
	}
	t.Setenv("VW_ARTIFACTS", "")
	// go test runs in the package's folder, two below the repository's.
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	got := ArtifactDir(t)
	if fi, err := os.Stat(filepath.Join(root, "artifacts")); err == nil && fi.IsDir() {
		if got != filepath.Join(root, "artifacts") {
			t.Fatalf("ArtifactDir = %q, want the repository's artifacts/", got)
		}
	} else if fi, err := os.Stat(got); err != nil || !fi.IsDir() {
		t.Fatalf("ArtifactDir = %q, not a directory", got)
	}
}

func TestFileName(t *testing.T) {
	for in, want := range map[string]string{
		"TestX/sub case-1": "TestX_sub_case-1",
		"a.b_c":            "a.b_c",
		"../x":             ".._x",
	} {
		if got := fileName(in); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}
