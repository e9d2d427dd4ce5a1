package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/jsonhttp"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

// command is one websocket-JSON control API message.
type command struct {
	Verb  string          `json:"verb"`
	What  string          `json:"what"`
	Which string          `json:"which"`
	Rule  json.RawMessage `json:"rule"`
}

// errUnrecognised is the original tool's answer to anything it did not
// understand; operators' scripts may match on it.
var errUnrecognised = errors.New("Unrecognised Command")

// RunControl answers control API commands until ctx ends: each command that
// arrives on the api topic (sent by an operator through the relay and
// published there by the apiRule destination) gets one reply, published back
// to the same topic for the apiRule to carry out. Binary messages and
// messages that are not commands get none.
func (s *Server) RunControl(ctx context.Context) {
	topic := s.rules.Topic(rules.APIStream)
	sub := s.hub.Subscribe(topic, hub.SubConfig{Queue: 64, Policy: hub.Drop})
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-sub.C():
			if !m.Text {
				continue
			}
			if reply := s.Command(ctx, m.Data); reply != nil {
				s.hub.Publish(topic, &hub.Message{Data: reply, Text: true, From: sub.ID()})
			}
		}
	}
}

// Command interprets one control API message and returns the JSON reply, or
// nil for a message that gets none. Every peer of the control route hears
// every message on it, replies included; so a reply must never be answered,
// or two vw streams on one route would answer each other forever. A
// command is a JSON object whose "verb" is a string, and no reply has one:
// JSON without it is not answered. Text that is not JSON is answered
// "Unrecognised Command", as the original tool did.
func (s *Server) Command(ctx context.Context, msg []byte) []byte {
	c, isCommand, err := parseCommand(msg)
	if !isCommand {
		return nil
	}
	var reply any
	if err == nil {
		reply, err = s.command(ctx, c)
	}
	if err != nil {
		msg := jsonhttp.OneLine(err.Error())
		_, reason := refusalOf(err)
		s.refusals.Warn(reason, logrus.Fields{
			"verb": clip(c.Verb), "what": clip(c.What), "which": clip(c.Which), "err": clip(msg),
		}, "control API command refused")
		reply = map[string]string{"error": msg}
	}
	b, err := json.Marshal(reply)
	if err != nil { // cannot happen for the types above; answer rather than panic
		b = []byte(`{"error":"internal error"}`)
	}
	return b
}

// parseCommand reads msg's verb, what, which and rule, with names exactly
// so spelled, unknown members ignored as the original tool did, and no
// member twice. isCommand is false for a message that must not be answered.
func parseCommand(msg []byte) (c command, isCommand bool, err error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		return c, !json.Valid(msg), errUnrecognised
	}
	verb := m["verb"]
	if len(verb) == 0 || verb[0] != '"' {
		return c, false, nil
	}
	if err := checkStrict(msg, nil); err != nil {
		return c, true, fmt.Errorf("%w: %v", errUnrecognised, err)
	}
	for _, f := range []struct {
		raw json.RawMessage
		to  *string
	}{{verb, &c.Verb}, {m["what"], &c.What}, {m["which"], &c.Which}} {
		if f.raw != nil && json.Unmarshal(f.raw, f.to) != nil {
			return c, true, errUnrecognised
		}
	}
	c.Rule = m["rule"]
	return c, true, nil
}

// clip keeps a logged value short: a peer chooses it.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

func (s *Server) command(ctx context.Context, c command) (any, error) {
	switch c.Verb {
	case "healthcheck":
		return map[string]string{"healthcheck": "ok"}, nil
	case "add":
		return s.commandAdd(ctx, c)
	case "list":
		return s.commandList(c)
	case "delete":
		return s.commandDelete(c)
	}
	return nil, errUnrecognised
}

func (s *Server) commandAdd(ctx context.Context, c command) (any, error) {
	switch c.What {
	case "stream":
		rule, err := decodeRule[rules.StreamRule](c.Rule)
		if err != nil {
			return nil, err
		}
		return s.rules.SetStream(ctx, rule)
	case "destination":
		rule, err := decodeRule[rwc.Rule](c.Rule)
		if err != nil {
			return nil, err
		}
		return s.rules.SetDestination(rule, true)
	}
	return nil, errUnrecognised
}

func (s *Server) commandList(c command) (any, error) {
	switch {
	case c.What == "stream" && c.Which == "all":
		return s.rules.Streams(), nil
	case c.What == "stream" && c.Which != "":
		feeds, _ := s.rules.Stream(c.Which)
		return map[string][]string{"feeds": feeds}, nil
	case c.What == "destination" && c.Which == "all":
		return s.rules.Destinations(), nil
	case c.What == "destination" && c.Which != "":
		rule, ok := s.rules.Destination(c.Which)
		if !ok {
			return nil, fmt.Errorf("no destination %q", c.Which)
		}
		return rule, nil
	}
	return nil, errUnrecognised
}

func (s *Server) commandDelete(c command) (any, error) {
	var err error
	switch {
	case c.What == "stream" && c.Which == "all":
		s.rules.DeleteStreams()
		return map[string]string{"deleted": "deleteAll"}, nil
	case c.What == "stream" && c.Which != "":
		err = s.rules.DeleteStream(c.Which)
	case c.What == "destination" && c.Which == "all":
		s.rules.DeleteDestinations()
		return map[string]string{"deleted": "deleteAll"}, nil
	case c.What == "destination" && c.Which != "":
		err = s.rules.DeleteDestination(c.Which, true)
	default:
		return nil, errUnrecognised
	}
	if err != nil {
		return nil, err
	}
	return map[string]string{"deleted": c.Which}, nil
}

// decodeRule decodes a command's rule strictly, as the REST routes do.
func decodeRule[T any](raw json.RawMessage) (T, error) {
	if len(raw) == 0 {
		var zero T
		return zero, fmt.Errorf("%w: missing \"rule\"", rules.ErrBadRule)
	}
	v, err := unmarshalStrict[T](raw)
	if err != nil {
		return v, fmt.Errorf("%w: %v", rules.ErrBadRule, err)
	}
	return v, nil
}
