package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/internal/statefile"
)

// The deny list is kept in a state file so that a restart does not
// un-revoke a token: loaded by New, saved after every deny. A file that
// cannot be read or understood stops the relay from starting, since
// starting with an empty list would quietly let every revoked token back in.

// stateVersion is the format of the state file.
const stateVersion = 1

// stateFile is the state file's content.
type stateFile struct {
	Version int      `json:"version"`
	Denied  []Denial `json:"denied"`
}

// DefaultStatePath is where the relay keeps its deny list when VW_RELAY_STATE
// is not set: systemd's StateDirectory if the unit has one, else the XDG
// state folder.
func DefaultStatePath() string { return statefile.DefaultPath("relay.json") }

// restore loads the deny list from the state file, keeps the entries still
// in force, and saves it back at once: that drops what has expired and
// proves the file writable now rather than at the first deny.
func (a *Auth) restore() error {
	list, err := loadDenyList(a.statePath)
	if err != nil {
		return err
	}
	now := a.now()
	a.mu.Lock()
	for _, d := range list {
		if now.After(d.Until) {
			continue
		}
		a.denied[d.JTI] = append(a.denied[d.JTI], d)
		a.nDenied++
	}
	n := a.nDenied
	a.mu.Unlock()
	if err := a.persist(); err != nil {
		return fmt.Errorf("auth: state file %s: %w", a.statePath, err)
	}
	a.log.WithFields(logrus.Fields{"state": a.statePath, "denied": n}).Info("relay deny list restored")
	return nil
}

// loadDenyList reads a state file; a missing one is an empty list.
func loadDenyList(path string) ([]Denial, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: state file: %w", err)
	}
	bad := func(why string) error {
		return fmt.Errorf("auth: state file %s is unusable (%s): fix or remove it; removing it forgets every revoked token", path, why)
	}
	var st stateFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, bad(err.Error())
	}
	if st.Version != stateVersion {
		return nil, bad(fmt.Sprintf("version %d, want %d", st.Version, stateVersion))
	}
	if len(st.Denied) > maxDenied {
		return nil, bad(fmt.Sprintf("%d entries, more than the %d allowed", len(st.Denied), maxDenied))
	}
	seen := make(map[[2]string]bool, len(st.Denied))
	for i, d := range st.Denied {
		p, err := normalizePrefix(d.Path)
		switch {
		case d.JTI == "":
			return nil, bad(fmt.Sprintf("entry %d has no jti", i))
		case err != nil || p != d.Path:
			return nil, bad(fmt.Sprintf("entry %d has path %q", i, d.Path))
		case d.Until.IsZero():
			return nil, bad(fmt.Sprintf("entry %d has no until", i))
		case seen[[2]string{d.JTI, d.Path}]:
			return nil, bad(fmt.Sprintf("entry %d repeats %s under %s", i, d.JTI, d.Path))
		}
		seen[[2]string{d.JTI, d.Path}] = true
	}
	return st.Denied, nil
}

// persist saves the deny list to the state file, if there is one. Saves are
// serialized and each takes its snapshot once it holds the turn, so the
// last save written holds every deny answered before it.
func (a *Auth) persist() error {
	if a.statePath == "" {
		return nil
	}
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	now := a.now()
	a.mu.Lock()
	a.sweepDeniedLocked(now, true)
	st := stateFile{Version: stateVersion, Denied: make([]Denial, 0, a.nDenied)}
	for _, list := range a.denied {
		st.Denied = append(st.Denied, list...)
	}
	a.mu.Unlock()
	// A stable order makes the file diffable and a rewrite of an unchanged
	// list byte-identical.
	slices.SortFunc(st.Denied, func(x, y Denial) int {
		if c := strings.Compare(x.JTI, y.JTI); c != 0 {
			return c
		}
		return strings.Compare(x.Path, y.Path)
	})
	for i := range st.Denied {
		st.Denied[i].Until = st.Denied[i].Until.UTC()
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(a.statePath, append(b, '\n'))
}

// writeAtomic replaces path with b: a temporary file in the same folder,
// synced, renamed over the old one, and the folder synced, so that a crash
// at any instant leaves the old file or the new one, whole. The file is
// 0600 in a 0700 folder: it names every revoked token id.
func writeAtomic(path string, b []byte) error { return statefile.Write(path, b) }
