package rules

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/vwlab/vw/rwc"
)

// One validator per rule type: checkStream and checkDestination are the
// only places that say what a rule may hold, and every path in calls them:
// SetStream and SetDestination, Restore, and the state file's check. What a
// destination's URL and file may be is rwc's to say (rwc.Validate); its
// names, and what the apiRule allows, are the service's.

// origin is where a rule comes from, the one thing that changes what a
// validator accepts.
type origin uint8

const (
	// local: REST, or vw stream's own settings (VW_API).
	local origin = iota
	// remote: the control API, which may not touch the apiRule that
	// carries it.
	remote
	// restored: the state file, where a destination id may be anything
	// older versions allowed.
	restored
)

// nameRE is the original tool's alphabet for feed and stream names.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_\-/]{1,200}$`)

// CheckName returns why name cannot be a feed or stream name, or a
// destination id, or nil. what names the thing in the error ("feed name",
// "stream name", "destination id").
func CheckName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: %s is empty", ErrBadRule, what)
	case !nameRE.MatchString(name):
		return fmt.Errorf("%w: %s %q: use 1 to 200 of a-z A-Z 0-9 - _ /", ErrBadRule, what, name)
	case name == "all":
		return fmt.Errorf("%w: %s \"all\" is reserved", ErrBadRule, what)
	case name == APIStream:
		return fmt.Errorf("%w: %s %q is reserved for the control API", ErrBadRule, what, APIStream)
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//"):
		return fmt.Errorf("%w: %s %q has an empty path segment", ErrBadRule, what, name)
	}
	return nil
}

// checkStream validates a stream rule and returns it as stored: leading
// slashes of its names trimmed. The caller's feeds slice is not changed.
func checkStream(s StreamRule) (StreamRule, error) {
	s.Stream = strings.TrimPrefix(s.Stream, "/")
	if err := CheckName("stream name", s.Stream); err != nil {
		return s, err
	}
	if s.Feeds == nil {
		return s, fmt.Errorf("%w: missing \"feeds\"", ErrBadRule)
	}
	if len(s.Feeds) == 0 {
		return s, fmt.Errorf("%w: \"feeds\" is empty; delete the stream instead", ErrBadRule)
	}
	feeds := make([]string, len(s.Feeds))
	seen := make(map[string]bool, len(s.Feeds))
	for i, f := range s.Feeds {
		f = strings.TrimPrefix(f, "/")
		if err := CheckName("feed name", f); err != nil {
			return s, err
		}
		if seen[f] {
			return s, fmt.Errorf("%w: feed %q is listed twice", ErrBadRule, f)
		}
		seen[f] = true
		feeds[i] = f
	}
	s.Feeds = feeds
	return s, nil
}

// checkDestination validates a destination rule from where and returns it
// as stored: its stream's leading slash trimmed, the apiRule's stream set.
func checkDestination(d rwc.Rule, from origin) (rwc.Rule, error) {
	d.Stream = strings.TrimPrefix(d.Stream, "/")
	switch {
	case strings.TrimSpace(d.ID) == "":
		return d, fmt.Errorf("%w: missing \"id\"", ErrBadRule)
	case d.ID == "all":
		return d, fmt.Errorf("%w: id \"all\" is reserved", ErrBadRule)
	case d.Destination == "":
		return d, fmt.Errorf("%w: missing \"destination\"", ErrBadRule)
	case d.ID == APIRuleID && from == remote:
		return d, fmt.Errorf("%w: Cannot modify apiRule over the control API", ErrBadRule)
	case d.ID == APIRuleID:
		d.Stream = APIStream
	default:
		if from != restored {
			if err := CheckName("destination id", d.ID); err != nil {
				return d, err
			}
		}
		if err := CheckName("stream name", d.Stream); err != nil {
			return d, err
		}
	}
	return d, rwc.Validate(d)
}
