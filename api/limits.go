package api

import (
	"errors"
	"fmt"
)

// ErrLimit marks a rule refused because it is too big or the rule set is
// full; it answers 400 with the limit in the reason. Without limits, one
// control message of 80,000 feeds took the host to 1.1 GB.
var ErrLimit = errors.New("over a limit")

// Defaults of Limits.
const (
	DefaultMaxFeedsPerStream = 16
	DefaultMaxRules          = 256
)

// Limits bound the rule set. Zero fields take the defaults.
type Limits struct {
	// FeedsPerStream is the most feeds one stream rule may combine
	// (VW_MAX_FEEDS_PER_STREAM).
	FeedsPerStream int
	// Rules is the most stream rules, and separately the most destination
	// rules besides the apiRule (VW_MAX_RULES).
	Rules int
}

func (l Limits) withDefaults() Limits {
	if l.FeedsPerStream <= 0 {
		l.FeedsPerStream = DefaultMaxFeedsPerStream
	}
	if l.Rules <= 0 {
		l.Rules = DefaultMaxRules
	}
	return l
}

// SetLimits replaces the limits; rules already stored stay.
func (rs *Rules) SetLimits(l Limits) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.limits = l.withDefaults()
}

func (rs *Rules) checkFeedCount(stream string, n int) error {
	if max := rs.limits.FeedsPerStream; n > max {
		return fmt.Errorf("%w: stream %q has %d feeds; at most %d (VW_MAX_FEEDS_PER_STREAM)", ErrLimit, stream, n, max)
	}
	return nil
}

// checkStreamCount refuses a new stream rule when there are already as
// many as allowed; replacing one is always allowed. Called with rs.mu held.
func (rs *Rules) checkStreamCount(name string) error {
	if _, exists := rs.agg.Get(name); exists {
		return nil
	}
	if max := rs.limits.Rules; len(rs.agg.All()) >= max {
		return fmt.Errorf("%w: already %d stream rules, the most allowed (VW_MAX_RULES); delete one first", ErrLimit, max)
	}
	return nil
}

// checkDestinationCount is checkStreamCount for destination rules; the
// apiRule does not count.
func (rs *Rules) checkDestinationCount(id string) error {
	if _, exists := rs.rwc.Get(id); exists || id == APIRuleID {
		return nil
	}
	n := len(rs.rwc.All())
	if rs.apiRule != nil {
		n--
	}
	if max := rs.limits.Rules; n >= max {
		return fmt.Errorf("%w: already %d destination rules, the most allowed (VW_MAX_RULES); delete one first", ErrLimit, max)
	}
	return nil
}
