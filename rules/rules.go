// Package rules owns the rule set of vw stream: stream rules (run by agg)
// and destination rules (run by rwc), the names they may use, the limits on
// them, the apiRule that carries the control API, and the state file that
// keeps them across restarts. Every transport (REST, the control API) calls
// this one service, so they can never disagree.
package rules

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/agg"
	"github.com/vwlab/vw/rwc"
)

// APIRuleID is the ID of the destination rule that carries the control API
// to the relay; APIStream is its stream, the topic commands arrive on.
const (
	APIRuleID = "apiRule"
	APIStream = "api"
)

// ErrBadRule marks errors that are the caller's fault; they answer 400.
var ErrBadRule = errors.New("bad rule")

// ErrAPIRule answers an attempt to delete the apiRule over the control API,
// in the original tool's words.
var ErrAPIRule = errors.New("Cannot delete apiRule")

// ErrNotFound marks a rule that does not exist; it answers 404.
var ErrNotFound = errors.New("not found")

// StreamRule is a stream and the feeds it is made of.
type StreamRule struct {
	Stream string   `json:"stream"`
	Feeds  []string `json:"feeds"`
}

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

// Resolver returns the function rwc uses to find a destination's topic: a
// stream rule's muxed output if a rule of that name exists, otherwise the
// feed of that name directly.
func Resolver(a *agg.Agg) func(stream string) string {
	return func(stream string) string {
		if _, ok := a.Get(stream); ok {
			return agg.StreamTopic(stream)
		}
		return agg.FeedTopic(stream)
	}
}

// Config shapes the rules service. Zero fields take the defaults.
type Config struct {
	// MaxFeedsPerStream is the most feeds one stream rule may combine
	// (VW_MAX_FEEDS_PER_STREAM); default DefaultMaxFeedsPerStream.
	MaxFeedsPerStream int
	// MaxRules is the most stream rules, and separately the most
	// destination rules besides the apiRule (VW_MAX_RULES); default
	// DefaultMaxRules.
	MaxRules int
	// APIRule, if set, is the destination that carries the control API
	// (VW_API): installed at once as id APIRuleID, stream APIStream, and
	// kept: it cannot be deleted over the control API and survives
	// "delete all".
	APIRule *rwc.Rule
}

// Service is the one rules service behind both the REST routes and the
// websocket control API. Changes are serialised: a stream rule change and
// the destination refresh it causes happen as one step.
type Service struct {
	cfg     Config
	agg     *agg.Agg
	rwc     *rwc.RWC
	apiRule *rwc.Rule
	log     *logrus.Entry

	mu       sync.Mutex
	onChange func()
}

// New returns the rules service over a and r, with the apiRule installed if
// cfg has one.
func New(cfg Config, a *agg.Agg, r *rwc.RWC, log *logrus.Entry) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	rs := &Service{cfg: cfg, agg: a, rwc: r, log: log}
	if cfg.APIRule != nil {
		rule := *cfg.APIRule
		rule.ID, rule.Stream = APIRuleID, APIStream
		if err := r.Set(rule); err != nil {
			return nil, fmt.Errorf("control API destination (VW_API): %w", err)
		}
		rs.apiRule = &rule
	}
	return rs, nil
}

// OnChange sets a function called after every change to the rules, for
// persisting them. It is called with the rules lock held, so it sees each
// change in order and alone.
func (rs *Service) OnChange(f func()) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.onChange = f
}

func (rs *Service) changed() {
	if rs.onChange != nil {
		rs.onChange()
	}
}

// SetStream stores a stream rule; when it returns the rule is in force.
func (rs *Service) SetStream(ctx context.Context, s StreamRule) (StreamRule, error) {
	return rs.setStream(ctx, s, false)
}

// setStream is SetStream; restoring skips the limits, so that rules saved
// under larger ones are not lost when the limits shrink.
func (rs *Service) setStream(ctx context.Context, s StreamRule, restoring bool) (StreamRule, error) {
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
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !restoring {
		if err := rs.checkFeedCount(s.Stream, len(s.Feeds)); err != nil {
			return s, err
		}
	}
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
		s.Feeds[i] = f
	}
	if !restoring {
		if err := rs.checkStreamCount(s.Stream); err != nil {
			return s, err
		}
	}
	if err := rs.agg.Set(ctx, s.Stream, s.Feeds); err != nil {
		return s, err
	}
	rs.rwc.Refresh()
	rs.changed()
	rs.log.WithFields(logrus.Fields{"stream": s.Stream, "feeds": len(s.Feeds)}).Info("stream rule set")
	return s, nil
}

// Topic returns the hub topic a destination or preview of stream reads.
func (rs *Service) Topic(stream string) string {
	return Resolver(rs.agg)(strings.TrimPrefix(stream, "/"))
}

// Stream returns the feeds of a stream rule.
func (rs *Service) Stream(name string) ([]string, bool) {
	return rs.agg.Get(strings.TrimPrefix(name, "/"))
}

// Streams returns every stream rule.
func (rs *Service) Streams() map[string][]string { return rs.agg.All() }

// DeleteStream removes a stream rule; destinations that pushed it fall back
// to the feed of the same name, if any.
func (rs *Service) DeleteStream(name string) error {
	name = strings.TrimPrefix(name, "/")
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !rs.agg.Delete(name) {
		return fmt.Errorf("%w: no stream %q", ErrNotFound, name)
	}
	rs.rwc.Refresh()
	rs.changed()
	rs.log.WithField("stream", name).Info("stream rule deleted")
	return nil
}

// DeleteStreams removes every stream rule.
func (rs *Service) DeleteStreams() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.agg.DeleteAll()
	rs.rwc.Refresh()
	rs.changed()
	rs.log.Info("all stream rules deleted")
}

// SetDestination stores a destination rule; a rule with the same ID is
// replaced make-before-break. remote marks a change that came over the
// control API, which may not touch the apiRule that carries it. The answer
// shows the rule as stored, its token redacted.
func (rs *Service) SetDestination(d rwc.Rule, remote bool) (DestinationView, error) {
	return rs.setDestination(d, remote, false)
}

// setDestination is SetDestination; restoring skips the limits and the
// id's name rules (older versions allowed any id), and a recording that
// cannot be opened does not keep the rule out (see rwc.RWC.Restore).
func (rs *Service) setDestination(d rwc.Rule, remote, restoring bool) (DestinationView, error) {
	d.Stream = strings.TrimPrefix(d.Stream, "/")
	if err := rs.checkDestination(d, remote, restoring); err != nil {
		return DestinationView{}, err
	}
	if d.ID == APIRuleID {
		d.Stream = APIStream
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var err error
	if d, err = rs.resolveToken(d); err != nil {
		return DestinationView{}, err
	}
	if restoring {
		err = rs.rwc.Restore(d)
	} else if err = rs.checkDestinationCount(d.ID); err == nil {
		err = rs.rwc.Set(d)
	}
	if err != nil {
		return DestinationView{}, err // rwc.ErrInvalid answers 400 (statusOf)
	}
	if d.ID == APIRuleID {
		rs.apiRule = &d
	}
	rs.changed()
	rs.log.WithFields(logrus.Fields{"id": d.ID, "stream": d.Stream, "url": d.Destination}).Info("destination rule set")
	return rs.view(d), nil
}

// checkDestination validates what a destination rule says on its own.
func (rs *Service) checkDestination(d rwc.Rule, remote, restoring bool) error {
	switch {
	case d.ID == "":
		return fmt.Errorf("%w: missing \"id\"", ErrBadRule)
	case d.ID == "all":
		return fmt.Errorf("%w: id \"all\" is reserved", ErrBadRule)
	case d.Destination == "":
		return fmt.Errorf("%w: missing \"destination\"", ErrBadRule)
	case d.ID == APIRuleID && remote:
		return fmt.Errorf("%w: Cannot modify apiRule over the control API", ErrBadRule)
	case d.ID == APIRuleID:
		return nil
	}
	if !restoring {
		if err := CheckName("destination id", d.ID); err != nil {
			return err
		}
	}
	return CheckName("stream name", d.Stream)
}

// Destination returns one destination rule, as the API shows it.
func (rs *Service) Destination(id string) (DestinationView, bool) {
	r, ok := rs.rwc.Get(id)
	return rs.view(r), ok
}

// Destinations returns every destination rule, the apiRule included, as the
// API shows them.
func (rs *Service) Destinations() map[string]DestinationView {
	all := rs.rwc.All()
	out := make(map[string]DestinationView, len(all))
	for id, r := range all {
		out[id] = rs.view(r)
	}
	return out
}

// DestinationStats returns the state of destination id's client, and
// whether id exists.
func (rs *Service) DestinationStats(id string) (rwc.Stats, bool) { return rs.rwc.Stats(id) }

// DeleteDestination removes one destination rule. Over the control API the
// apiRule cannot be deleted: the operator would cut the branch they sit on.
func (rs *Service) DeleteDestination(id string, remote bool) error {
	if id == APIRuleID && remote {
		return ErrAPIRule
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if !rs.rwc.Delete(id) {
		return fmt.Errorf("%w: no destination %q", ErrNotFound, id)
	}
	if id == APIRuleID {
		rs.apiRule = nil
	}
	rs.changed()
	rs.log.WithField("id", id).Info("destination rule deleted")
	return nil
}

// DeleteDestinations removes every destination rule but the apiRule, which
// stays connected: deleting and re-adding it would drop the very reply that
// tells the operator it worked.
func (rs *Service) DeleteDestinations() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.apiRule != nil {
		rs.rwc.DeleteAll(APIRuleID)
	} else {
		rs.rwc.DeleteAll()
	}
	rs.changed()
	rs.log.Info("all destination rules deleted")
}

// Close stops every muxer and destination.
func (rs *Service) Close() {
	rs.rwc.Close()
	rs.agg.Close()
}
