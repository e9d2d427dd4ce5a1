package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
)

// distTarget is one architecture make dist builds for.
type distTarget struct {
	name, debArch string // in the tarball's and the .deb's names
	machine       elf.Machine
	goarm         string // GOARM the binary must be built with, or ""
}

var distTargets = []distTarget{
	{"amd64", "amd64", elf.EM_X86_64, ""},
	{"arm64", "arm64", elf.EM_AARCH64, ""},
	{"armv7", "armhf", elf.EM_ARM, "7"},
}

// TestDist builds the release with make dist, as a release is built, and
// checks what a lab hoster gets: for each architecture a tarball and a .deb
// holding a binary for that machine with the player libraries in it; then it
// installs the amd64 .deb on this machine, runs vw version from it, verifies
// its systemd units, and removes and purges it, leaving nothing behind. It
// changes the machine, so it runs in CI only (as root there).
func TestDist(t *testing.T) {
	if !testutil.InCI() {
		t.Skip("builds every release artefact and installs the .deb on this machine: runs with CI=true, as root")
	}
	if os.Geteuid() != 0 {
		t.Fatal("CI=true: this test installs a .deb and must run as root")
	}
	for _, tool := range []string{"make", "dpkg", "dpkg-deb", "systemd-analyze"} {
		testutil.NeedTool(t, tool)
	}
	if err := exec.Command("dpkg", "-s", "vw").Run(); err == nil {
		t.Fatal("a vw package is installed on this machine already; this test would replace it")
	}

	// A version as git describe gives it three commits after a tag: the
	// packages must turn it into a Debian version that sorts after the tag.
	const version, debVersion = "v1.2.3-4-gabcdef0", "1.2.3+4.gabcdef0"
	out := t.TempDir()
	start := time.Now().UTC().Truncate(time.Second)
	make := exec.Command("make", "-C", filepath.Join("..", ".."), "dist", "DIST="+out, "VERSION="+version)
	if b, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make dist: %v\n%s", err, b)
	}

	var libraries [][]byte
	for _, name := range []string{"jsmpeg-player.umd.min.js", "mpegts.js"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "jsmpeg", "assets", name))
		if err != nil {
			t.Fatalf("a player library (make dist copies it in): %v", err)
		}
		libraries = append(libraries, b)
	}
	for _, tg := range distTargets {
		dir := "vw_" + debVersion + "_linux_" + tg.name
		files := untar(t, filepath.Join(out, dir+".tar.gz"))
		for _, f := range []string{"README.md", "examples/camera.sh", "examples/systemd/vw-stream.service", "examples/systemd/stream.env", "examples/systemd/relay.env"} {
			if _, ok := files[dir+"/"+f]; !ok {
				t.Errorf("%s.tar.gz has no %s", dir, f)
			}
		}
		checkBinary(t, dir+".tar.gz", files[dir+"/vw"], tg, libraries)

		deb := filepath.Join(out, "vw_"+debVersion+"_"+tg.debArch+".deb")
		if got := debField(t, deb, "Architecture"); got != tg.debArch {
			t.Errorf("%s: Architecture %q", deb, got)
		}
		checkBinary(t, filepath.Base(deb), debFile(t, deb, "./usr/bin/vw"), tg, libraries)
	}
	if t.Failed() {
		t.FailNow()
	}

	installed := installDeb(t, filepath.Join(out, "vw_"+debVersion+"_amd64.deb"))
	checkVersion(t, version, start)
	verifyUnits(t)
	removeDeb(t, installed)
}

// untar returns the regular files of a .tar.gz by name.
func untar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("artefact missing: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag == tar.TypeReg {
			if files[h.Name], err = io.ReadAll(tr); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
	}
}

// checkBinary checks that bin is an executable for tg's machine (and ARM
// version) with the player libraries embedded.
func checkBinary(t *testing.T, from string, bin []byte, tg distTarget, libraries [][]byte) {
	t.Helper()
	if len(bin) == 0 {
		t.Errorf("%s: no vw binary", from)
		return
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Errorf("%s: vw is not ELF: %v", from, err)
		return
	}
	if f.Machine != tg.machine || f.Type != elf.ET_EXEC {
		t.Errorf("%s: vw is %v %v, want an executable for %v", from, f.Machine, f.Type, tg.machine)
	}
	bi, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		t.Errorf("%s: no Go build info: %v", from, err)
		return
	}
	goarm := ""
	for _, s := range bi.Settings {
		if s.Key == "GOARM" {
			goarm = s.Value
		}
	}
	if goarm != tg.goarm {
		t.Errorf("%s: built with GOARM=%q, want %q", from, goarm, tg.goarm)
	}
	for i, lib := range libraries {
		if !bytes.Contains(bin, lib) {
			t.Errorf("%s: player library %d is not embedded", from, i)
		}
	}
}

// debField returns a field of a .deb's control file.
func debField(t *testing.T, deb, field string) string {
	t.Helper()
	b, err := exec.Command("dpkg-deb", "--field", deb, field).Output()
	if err != nil {
		t.Fatalf("artefact missing or broken: dpkg-deb --field %s: %v", deb, err)
	}
	return strings.TrimSpace(string(b))
}

// debFile returns one file from a .deb's data.
func debFile(t *testing.T, deb, name string) []byte {
	t.Helper()
	b, err := exec.Command("dpkg-deb", "--fsys-tarfile", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile %s: %v", deb, err)
	}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s has no %s: %v", deb, name, err)
		}
		if h.Name == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}
