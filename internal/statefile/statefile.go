// Package statefile keeps the small state files of vw (vw stream's rules,
// the relay's deny list): where one lives by default, and how it is
// replaced so that a crash at any instant leaves the old file or the new
// one, whole.
package statefile

import (
	"os"
	"path/filepath"
	"strings"
)

// DefaultPath is where the state file called name lives when no setting
// names one: systemd's StateDirectory if the unit has one (the first, if it
// lists several), else $XDG_STATE_HOME/vw, else ~/.local/state/vw, else
// ./vw-name.
func DefaultPath(name string) string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		d, _, _ = strings.Cut(d, ":")
		return filepath.Join(d, name)
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "vw", name)
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "vw", name)
	}
	return filepath.Join(".", "vw-"+name)
}

// Write replaces path with b: a temporary file in the same folder, synced,
// renamed over the old one, and the folder synced. The file is 0600 in a
// 0700 folder, created if need be: state files hold tokens.
func Write(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
