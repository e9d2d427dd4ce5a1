package rules

import (
	"errors"
	"fmt"

	"github.com/vwlab/vw/internal/defaults"
)

// ErrLimit marks a rule refused because it is too big or the rule set is
// full; it answers 400 with the limit in the reason. Without limits, one
// control message of 80,000 feeds took the host to 1.1 GB.
var ErrLimit = errors.New("over a limit")

// Defaults of Config's limits.
const (
	DefaultMaxFeedsPerStream = 16
	DefaultMaxRules          = 256
)

func (c Config) withDefaults() (Config, error) {
	err := errors.Join(
		defaults.Positive("MaxFeedsPerStream", &c.MaxFeedsPerStream, DefaultMaxFeedsPerStream),
		defaults.Positive("MaxRules", &c.MaxRules, DefaultMaxRules),
	)
	return c, err
}

func (rs *Service) checkFeedCount(stream string, n int) error {
	if max := rs.cfg.MaxFeedsPerStream; n > max {
		return fmt.Errorf("%w: stream %q has %d feeds; at most %d (VW_MAX_FEEDS_PER_STREAM)", ErrLimit, stream, n, max)
	}
	return nil
}

// checkStreamCount refuses a new stream rule when there are already as
// many as allowed; replacing one is always allowed. Called with rs.mu held.
func (rs *Service) checkStreamCount(name string) error {
	if _, exists := rs.agg.Get(name); exists {
		return nil
	}
	if max := rs.cfg.MaxRules; len(rs.agg.All()) >= max {
		return fmt.Errorf("%w: already %d stream rules, the most allowed (VW_MAX_RULES); delete one first", ErrLimit, max)
	}
	return nil
}

// checkDestinationCount is checkStreamCount for destination rules; the
// apiRule does not count.
func (rs *Service) checkDestinationCount(id string) error {
	if _, exists := rs.rwc.Get(id); exists || id == APIRuleID {
		return nil
	}
	n := len(rs.rwc.All())
	if rs.apiRule != nil {
		n--
	}
	if max := rs.cfg.MaxRules; n >= max {
		return fmt.Errorf("%w: already %d destination rules, the most allowed (VW_MAX_RULES); delete one first", ErrLimit, max)
	}
	return nil
}
