package rules

import (
	"fmt"

	"github.com/vwlab/vw/rwc"
)

// No output shows a relay token: listings, the answer to a POST and the
// control API's replies (which every peer of the control route hears) say
// only that a rule has one. The state file keeps the value, since it must
// survive a restart.
const (
	// TokenShown stands in listings for a token that is set.
	TokenShown = "set"
	// TokenKeep, sent as a rule's token, keeps the token already stored
	// for that id, if the destination URL is the same; a token is never
	// carried to another URL this way, so a rule re-pointed by someone who
	// cannot read the token cannot take the token along.
	TokenKeep = "keep"
)

// DestinationView is a destination rule as the API shows it. Field order is
// the wire order.
type DestinationView struct {
	Stream      string `json:"stream"`
	Destination string `json:"destination"`
	ID          string `json:"id"`
	// Token is TokenShown if the rule has a token, else empty.
	Token string `json:"token,omitempty"`
	File  string `json:"file,omitempty"`
	// RecordingError says why the rule's file is not being recorded (it
	// could not be opened when the rule was restored at start).
	RecordingError string `json:"recording_error,omitempty"`
}

// view returns the rule as the API shows it.
func (rs *Service) view(r rwc.Rule) DestinationView {
	v := DestinationView{Stream: r.Stream, Destination: r.Destination, ID: r.ID, File: r.File}
	if r.Token != "" {
		v.Token = TokenShown
	}
	if r.File != "" {
		v.RecordingError = rs.rwc.RecordingError(r.ID)
	}
	return v
}

// resolveToken turns a "keep" token into the stored one, under the rule
// above; called with rs.mu held.
func (rs *Service) resolveToken(d rwc.Rule) (rwc.Rule, error) {
	switch d.Token {
	case TokenShown:
		return d, fmt.Errorf("%w: \"token\":%q is how listings show a token; send the token itself, or %q to keep the stored one", ErrBadRule, TokenShown, TokenKeep)
	case TokenKeep:
		old, ok := rs.rwc.Get(d.ID)
		switch {
		case !ok || old.Token == "":
			return d, fmt.Errorf("%w: \"token\":%q, but destination %q has no token to keep", ErrBadRule, TokenKeep, d.ID)
		case old.Destination != d.Destination:
			return d, fmt.Errorf("%w: \"token\":%q keeps a token only for the same destination URL; send the token to use it with another", ErrBadRule, TokenKeep)
		}
		d.Token = old.Token
	}
	return d, nil
}
