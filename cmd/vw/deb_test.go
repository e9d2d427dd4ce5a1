package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// debInstall is what dpkg says an installed package put on the machine.
type debInstall struct {
	files     []string // regular files, conffiles included
	conffiles []string
}

// installDeb installs a .deb with dpkg -i and purges it when the test ends,
// whatever happened.
func installDeb(t *testing.T, deb string) debInstall {
	t.Helper()
	t.Cleanup(func() {
		if exec.Command("dpkg", "-s", "vw").Run() == nil {
			if b, err := exec.Command("dpkg", "--purge", "vw").CombinedOutput(); err != nil {
				t.Errorf("cleaning up: dpkg --purge vw: %v\n%s", err, b)
			}
		}
	})
	if b, err := exec.Command("dpkg", "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i %s: %v\n%s", deb, err, b)
	}
	list, err := exec.Command("dpkg", "-L", "vw").Output()
	if err != nil {
		t.Fatalf("dpkg -L vw: %v", err)
	}
	var in debInstall
	for _, p := range lines(string(list)) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			in.files = append(in.files, p)
		}
	}
	conf, err := exec.Command("dpkg-query", "-W", "-f=${Conffiles}", "vw").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	for _, l := range lines(string(conf)) {
		in.conffiles = append(in.conffiles, strings.Fields(l)[0])
	}
	for _, want := range []string{"/usr/bin/vw", "/etc/vw/stream.env", "/etc/vw/relay.env", "/usr/share/vw/camera.sh"} {
		if !slices.Contains(in.files, want) {
			t.Errorf("the package did not install %s; it installed %v", want, in.files)
		}
	}
	if len(in.conffiles) != 2 {
		t.Errorf("conffiles %v, want the two settings files in /etc/vw", in.conffiles)
	}
	return in
}

// checkVersion runs the installed vw version: it names the version, the
// commit and the build date given at build time.
func checkVersion(t *testing.T, version string, built time.Time) {
	t.Helper()
	b, err := exec.Command("/usr/bin/vw", "version").CombinedOutput()
	if err != nil {
		t.Fatalf("/usr/bin/vw version: %v\n%s", err, b)
	}
	out := string(b)
	commit := "unknown"
	if c, err := exec.Command("git", "-C", filepath.Join("..", ".."), "rev-parse", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(c))
	}
	for _, want := range []string{"vw " + version + "\n", "commit: " + commit + "\n", "linux/amd64"} {
		if !strings.Contains(out, want) {
			t.Errorf("vw version printed %q, want %q in it", out, want)
		}
	}
	_, date, _ := strings.Cut(out, "built: ")
	date, _, _ = strings.Cut(date, "\n")
	d, err := time.Parse(time.RFC3339, date)
	if err != nil || d.Before(built.Add(-time.Minute)) || d.After(time.Now().Add(time.Minute)) {
		t.Errorf("vw version says built %q (%v), want the time make dist ran (%v)", date, err, built)
	}
}

// verifyUnits checks the installed units as systemd would load them, and
// that the settings files they read are the ones the package installed.
func verifyUnits(t *testing.T) {
	t.Helper()
	units := []string{"vw-stream.service", "vw-relay.service", "vw-camera@video0.service", "vw-microphone@audio0.service"}
	b, err := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(b)) != "" {
		t.Errorf("systemd-analyze verify %v: %v\n%s", units, err, b)
	}
	for name, env := range map[string]string{"vw-stream.service": "/etc/vw/stream.env", "vw-relay.service": "/etc/vw/relay.env"} {
		unit, err := os.ReadFile("/usr/lib/systemd/system/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(unit), "\nEnvironmentFile=-"+env+"\n") {
			t.Errorf("%s does not read %s", name, env)
		}
		if !strings.Contains(string(unit), "\nExecStart=/usr/bin/vw ") {
			t.Errorf("%s does not run the packaged /usr/bin/vw", name)
		}
	}
}

// removeDeb enables units as an operator would, removes the package, which
// must leave only its settings files (and no links to units that are gone),
// then purges it, which must leave nothing.
func removeDeb(t *testing.T, in debInstall) {
	t.Helper()
	if b, err := exec.Command("systemctl", "enable", "vw-stream.service", "vw-camera@video0.service").CombinedOutput(); err != nil {
		t.Fatalf("systemctl enable: %v\n%s", err, b)
	}
	if links, _ := filepath.Glob("/etc/systemd/system/*/vw-*"); len(links) != 2 {
		t.Fatalf("systemctl enable made links %v, want two", links)
	}
	if b, err := exec.Command("dpkg", "-r", "vw").CombinedOutput(); err != nil {
		t.Fatalf("dpkg -r vw: %v\n%s", err, b)
	}
	for _, f := range in.files {
		_, err := os.Stat(f)
		if kept := slices.Contains(in.conffiles, f); kept != (err == nil) {
			t.Errorf("after dpkg -r: %s exists: %v (a settings file: %v)", f, err == nil, kept)
		}
	}
	if _, err := os.Stat("/usr/share/vw"); err == nil {
		t.Error("after dpkg -r: /usr/share/vw is left")
	}
	if links, _ := filepath.Glob("/etc/systemd/system/*/vw-*"); len(links) > 0 {
		t.Errorf("after dpkg -r: links to removed units are left: %v", links)
	}
	if b, err := exec.Command("dpkg", "--purge", "vw").CombinedOutput(); err != nil {
		t.Fatalf("dpkg --purge vw: %v\n%s", err, b)
	}
	for _, f := range append(in.files, "/etc/vw") {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("after dpkg --purge: %s is left", f)
		}
	}
	if exec.Command("dpkg", "-s", "vw").Run() == nil {
		t.Error("after dpkg --purge: dpkg still knows vw")
	}
}
