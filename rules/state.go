package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"time"

	"github.com/vwlab/vw/internal/statefile"
	"github.com/vwlab/vw/rwc"
)

// State is the rule set as saved to disk, so rules survive a restart. The
// apiRule is not in it: it comes from VW_API at every start.
type State struct {
	Version      int                 `json:"version"`
	Streams      map[string][]string `json:"streams"`
	Destinations map[string]rwc.Rule `json:"destinations"`
}

const stateVersion = 1

// Snapshot returns the current rules as a State.
func (rs *Service) Snapshot() State {
	d := rs.rwc.All()
	delete(d, APIRuleID)
	return State{Version: stateVersion, Streams: rs.agg.All(), Destinations: d}
}

// Restore installs every rule of st. If one is refused it removes what it
// installed and returns the error: a rule set is restored whole or not at
// all, never in part. A recording that cannot be opened is not a refusal:
// its rule is restored without it, and its listing says why
// (recording_error). Limits do not apply, so that lowering them loses no
// saved rule.
func (rs *Service) Restore(ctx context.Context, st State) (err error) {
	if err := st.check(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			rs.DeleteDestinations()
			rs.DeleteStreams()
		}
	}()
	names := make([]string, 0, len(st.Streams))
	for n := range st.Streams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := rs.setStream(ctx, StreamRule{Stream: n, Feeds: st.Streams[n]}, restored); err != nil {
			return err
		}
	}
	for _, d := range st.Destinations {
		if _, err := rs.setDestination(d, restored); err != nil {
			return err
		}
	}
	return nil
}

// check validates a State without installing it.
func (st State) check() error {
	if st.Version != stateVersion {
		return fmt.Errorf("state version %d, want %d", st.Version, stateVersion)
	}
	for n, feeds := range st.Streams {
		if _, err := checkStream(StreamRule{Stream: n, Feeds: feeds}); err != nil {
			return err
		}
	}
	for id, d := range st.Destinations {
		if id != d.ID || id == APIRuleID {
			return fmt.Errorf("destination under key %q has id %q", id, d.ID)
		}
		if _, err := checkDestination(d, restored); err != nil {
			return err
		}
	}
	return nil
}

// LoadState reads the state file. A missing file is an empty State and no
// error. A file that cannot be read or understood is moved aside (never
// overwritten, so nothing is lost) and reported in the error, which also
// names where it went; the caller starts with no rules.
func LoadState(path string) (State, error) {
	empty := State{Version: stateVersion}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return empty, nil
	}
	if err == nil {
		var st State
		if err = json.Unmarshal(b, &st); err == nil {
			if err = st.check(); err == nil {
				return st, nil
			}
		}
	}
	return empty, MoveAside(path, err)
}

// MoveAside renames an unusable state file so that it is kept for a person to
// look at, and returns an error that says why and where it went.
func MoveAside(path string, why error) error {
	aside := fmt.Sprintf("%s.bad-%s", path, time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(path, aside); err != nil {
		return fmt.Errorf("state file %s unusable (%v), and could not move it aside: %v", path, why, err)
	}
	return fmt.Errorf("state file %s unusable, moved to %s: %w", path, aside, why)
}

// SaveState writes st to path so that a crash at any instant leaves either
// the old file or the new one whole.
func SaveState(path string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return statefile.Write(path, append(b, '\n'))
}

// DefaultStatePath is where rules are kept when VW_STATE is not set:
// systemd's StateDirectory if the unit has one, else the XDG state folder.
func DefaultStatePath() string { return statefile.DefaultPath("rules.json") }
