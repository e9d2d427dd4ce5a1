package crossbar

import (
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/wsframe"
	"github.com/vwlab/vw/jsmpeg"
	"github.com/vwlab/vw/ts"
)

// Several relays can behave as one (package cluster joins them). The relay
// itself knows nothing of how: it tells its Cluster what its own clients
// publish and when a topic's local viewers and peers come and go, and it
// takes in what other relays publish through an Inlet, as if a local
// publisher had sent it. So fan-out, per-viewer queues and the dropping of
// slow viewers stay local to each relay, and a relay with no Cluster works
// exactly as before.

// Cluster is what the relay needs of a cluster of relays.
type Cluster interface {
	// Publish hands the other relays a message that a local publisher or
	// peer (id from) sent on topic; seq counts that client's messages from
	// 1. It must not block: a cluster that cannot keep up drops messages,
	// and the receiving relays see the gap in seq.
	Publish(topic string, from, seq uint64, m *hub.Message)
	// Changed tells that topic's local clients have come or gone. It must
	// not block, and must not call back into the relay before returning;
	// the cluster asks Wants and LocalTopics in its own time.
	Changed(topic string)
	// Status describes the cluster for /stats and the index.
	Status() ClusterStatus
}

// ClusterStatus is the cluster as one relay sees it.
type ClusterStatus struct {
	// Node is this relay's name in the cluster.
	Node string `json:"node"`
	// Peers are the other relays this one has heard of.
	Peers []PeerStatus `json:"peers"`
	// Topics lists, per topic, which other relays hold its clients (from
	// their last report, at most a couple of seconds old).
	Topics []ClusterTopic `json:"topics"`
	// Watching counts the topics this relay takes from the others now.
	Watching int `json:"watching"`
	// Messages this relay sent to the others and dropped (a queue full,
	// the connection down), received from them, and gaps seen in what
	// it received (each one a resync at the next keyframe).
	Sent     uint64 `json:"sent"`
	Dropped  uint64 `json:"dropped"`
	Received uint64 `json:"received"`
	Gaps     uint64 `json:"gaps"`
}

// PeerStatus is one other relay: up while it reports, and since when.
type PeerStatus struct {
	Node  string    `json:"node"`
	Up    bool      `json:"up"`
	Since time.Time `json:"since"`
}

// ClusterTopic is one topic held on other relays.
type ClusterTopic struct {
	Name   string       `json:"name"`
	Relays []TopicCount `json:"relays"`
}

// TopicCount is what one relay holds of a topic.
type TopicCount struct {
	// Node is the relay (empty for this one's own report).
	Node       string  `json:"node,omitempty"`
	Name       string  `json:"name,omitempty"`
	Publishers int     `json:"publishers"`
	Viewers    int     `json:"viewers"`
	Peers      int     `json:"peers"`
	RateIn     float64 `json:"rateIn"`
	// Since is when the topic's oldest publisher connected (zero without).
	Since time.Time `json:"since"`
	// Watching says the relay takes the topic from the others: its
	// subscription was made before the report that says so was sent.
	Watching bool `json:"watching,omitempty"`
}

// LocalTopics counts the clients of every topic of this relay, for the
// other relays of its cluster. It walks topics, not clients.
func (s *Server) LocalTopics() []TopicCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TopicCount, 0, len(s.topics))
	for _, t := range s.topics {
		if t.pubs+t.subs == 0 {
			continue
		}
		tc := TopicCount{Name: t.name, Publishers: t.pubs, RateIn: t.rate.in}
		if t.pubs > 0 {
			tc.Since = t.liveSince
		}
		if strings.HasPrefix(t.name, "/out/") {
			tc.Viewers = t.subs
		} else {
			tc.Peers = t.subs
		}
		out = append(out, tc)
	}
	return out
}

// Wants reports whether topic has local viewers or peers: whether what other
// relays publish on it is wanted here.
func (s *Server) Wants(topic string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.topics[topic]
	return t != nil && t.subs > 0
}

// NewID returns an id no client of this relay has, for the messages of one
// remote publisher: its From, so that a topic's keyframe cache tells its
// stream from another's.
func (s *Server) NewID() uint64 { return s.hub.NewID() }

// changed tells the cluster, if any, that t's clients changed; Server.mu is
// held.
func (s *Server) changed(t *topic) {
	if s.cfg.Cluster != nil {
		s.cfg.Cluster.Changed(t.name)
	}
}

// clusterPublish hands a local publisher's or peer's message to the cluster.
// It runs in the client's reader, after the local Publish, before msgsIn
// counts the message: so msgsIn+1 numbers it.
func (c *client) clusterPublish(m *hub.Message) {
	if cl := c.s.cfg.Cluster; cl != nil {
		cl.Publish(c.topic.name, c.id, c.msgsIn.Load()+1, m)
	}
}

// Inlet takes messages other relays published on a topic into this relay's
// topic of that name, which it holds open (with no local client, a topic
// lives while an Inlet holds it).
type Inlet struct {
	s *Server
	t *topic
}

// Attach returns an Inlet for topic, or nil if the relay is closed.
func (s *Server) Attach(topic string) *Inlet {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	t := s.topicLocked(topic)
	t.held++
	return &Inlet{s: s, t: t}
}

// Close lets the topic go.
func (in *Inlet) Close() {
	s := in.s
	s.mu.Lock()
	defer s.mu.Unlock()
	in.t.held--
	s.dropIdleLocked(in.t)
}

// Deliver publishes buf[at:] to the topic's local viewers and peers as if
// the local publisher with id from had sent it: so it reaches every local
// client, is counted in every viewer's backlog, and a stream's keyframe
// cache keeps it for viewers to come (the cache tells one publisher's
// stream from another's by from). text keeps the websocket type. buf[:at]
// is scratch space where the frame header is written (at must be at least
// MaxFrameHeader), so the payload leaves in one frame with no copy.
// Deliver never blocks; it must not be called for one topic from two
// goroutines at once.
func (in *Inlet) Deliver(buf []byte, at int, text bool, from uint64) {
	data := buf[at:]
	h := wsframe.HeaderLen(len(data), false)
	op := websocket.BinaryMessage
	if text {
		op = websocket.TextMessage
	}
	wsframe.PutHeader(buf[at-h:at], op, len(data), nil)
	m := &hub.Message{Data: data, Header: buf[at-h : at], Text: text, From: from}
	t := in.t
	n := uint64(len(data))
	pos := t.pos.Add(n)
	t.ht.Publish(m)
	if step := in.s.scanStep(); (pos-n)/step != pos/step {
		in.s.dropBehind(t)
	}
}

// MaxFrameHeader is the room Deliver needs in front of a payload.
const MaxFrameHeader = wsframe.MaxUnmasked

// clusterStatus is the cluster's status for /stats, its topics filtered by
// sees (nil: all); nil without a cluster. It is called without Server.mu:
// the cluster takes its own locks, and takes the relay's only without them.
func (s *Server) clusterStatus(sees func(topic string) bool) *ClusterStatus {
	if s.cfg.Cluster == nil {
		return nil
	}
	cs := s.cfg.Cluster.Status()
	if sees != nil {
		kept := cs.Topics[:0]
		for _, t := range cs.Topics {
			if sees(t.Name) {
				kept = append(kept, t)
			}
		}
		cs.Topics = kept
	}
	return &cs
}

// remoteStreams adds to the index the streams published only on other
// relays; local holds the names (without /out/) of those published here.
// Called without Server.mu.
func (s *Server) remoteStreams(out []jsmpeg.Stream, local map[string]bool) []jsmpeg.Stream {
	if s.cfg.Cluster == nil {
		return out
	}
	for _, ct := range s.cfg.Cluster.Status().Topics {
		name, ok := strings.CutPrefix(ct.Name, "/out/")
		if !ok || local[name] || !s.auth.Watchable(ct.Name) {
			continue
		}
		st := jsmpeg.Stream{Name: name}
		live := false
		for _, r := range ct.Relays {
			st.Viewers += r.Viewers
			if r.Publishers == 0 {
				continue
			}
			live = true
			st.BitRate += r.RateIn
			if st.Since.IsZero() || r.Since.Before(st.Since) {
				st.Since = r.Since
			}
		}
		if !live {
			continue
		}
		// Viewers here, and the codec if one of them made the PMT pass.
		s.mu.Lock()
		t := s.topics[ct.Name]
		if t != nil {
			st.Viewers += t.subs
		}
		s.mu.Unlock()
		if t != nil && t.psi != nil {
			if f := t.psi.family(); f != ts.FamilyNone {
				st.Codec = f.Title()
			}
		}
		out = append(out, st)
	}
	return out
}
