package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/hub"
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

// RunControl answers control API commands until ctx ends: each message that
// arrives on the api topic (sent by an operator through the relay and
// published there by the apiRule destination) gets one reply, published back
// to the same topic for the apiRule to carry out.
func (s *Server) RunControl(ctx context.Context) {
	topic := s.rules.Topic(APIStream)
	sub := s.hub.Subscribe(topic, hub.SubConfig{Queue: 64, Policy: hub.Drop})
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-sub.C():
			reply := s.Command(ctx, m.Data)
			s.hub.Publish(topic, &hub.Message{Data: reply, Text: true, From: sub.ID()})
		}
	}
}

// Command interprets one control API message and returns the JSON reply.
func (s *Server) Command(ctx context.Context, msg []byte) []byte {
	reply, err := s.command(ctx, msg)
	if err != nil {
		s.log.WithFields(logrus.Fields{"command": oneLine(string(truncate(msg, 200))), "err": err}).Warn("control API command refused")
		reply = map[string]string{"error": oneLine(err.Error())}
	}
	b, err := json.Marshal(reply)
	if err != nil { // cannot happen for the types above; answer rather than panic
		b = []byte(`{"error":"internal error"}`)
	}
	return b
}

func (s *Server) command(ctx context.Context, msg []byte) (any, error) {
	var c command
	if err := json.Unmarshal(msg, &c); err != nil {
		return nil, errUnrecognised
	}
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
		var rule StreamRule
		if err := decodeRule(c.Rule, &rule); err != nil {
			return nil, err
		}
		return s.rules.SetStream(ctx, rule)
	case "destination":
		var rule rwc.Rule
		if err := decodeRule(c.Rule, &rule); err != nil {
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
func decodeRule(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: missing \"rule\"", ErrBadRule)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRule, err)
	}
	return nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
