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
		rule.ID = APIRuleID
		rule, err := checkDestination(rule, local)
		if err == nil {
			err = r.Set(rule)
		}
		if err != nil {
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
	return rs.setStream(ctx, s, local)
}

// setStream is SetStream; restored rules skip the limits, so that rules
// saved under larger ones are not lost when the limits shrink.
func (rs *Service) setStream(ctx context.Context, s StreamRule, from origin) (StreamRule, error) {
	s, err := checkStream(s)
	if err != nil {
		return s, err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if from != restored {
		if err := rs.checkFeedCount(s.Stream, len(s.Feeds)); err != nil {
			return s, err
		}
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

// StreamCounters returns what a stream's muxer counted, and whether the
// stream has a rule.
func (rs *Service) StreamCounters(name string) (agg.StreamCounters, bool) {
	return rs.agg.Counters(name)
}

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
// replaced make-before-break. control marks a change that came over the
// control API, which may not touch the apiRule that carries it. The answer
// shows the rule as stored, its token redacted.
func (rs *Service) SetDestination(d rwc.Rule, control bool) (DestinationView, error) {
	from := local
	if control {
		from = remote
	}
	return rs.setDestination(d, from)
}

// setDestination is SetDestination; restored rules skip the limits, and a
// recording that cannot be opened does not keep them out (see
// rwc.RWC.Restore).
func (rs *Service) setDestination(d rwc.Rule, from origin) (DestinationView, error) {
	d, err := checkDestination(d, from)
	if err != nil {
		return DestinationView{}, err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if d, err = rs.resolveToken(d); err != nil {
		return DestinationView{}, err
	}
	if from == restored {
		err = rs.rwc.Restore(d)
	} else if err = rs.checkDestinationCount(d.ID); err == nil {
		err = rs.rwc.Set(d)
	}
	if err != nil {
		return DestinationView{}, err // rwc.ErrInvalid answers 400
	}
	if d.ID == APIRuleID {
		rs.apiRule = &d
	}
	rs.changed()
	rs.log.WithFields(logrus.Fields{"id": d.ID, "stream": d.Stream, "url": d.Destination}).Info("destination rule set")
	return rs.view(d), nil
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
