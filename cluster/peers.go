package cluster

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vwlab/vw/crossbar"
)

// Every relay tells the others, once per Report and soon after its clients
// change, which topics it holds and how many publishers, viewers and peers
// each has. That is the cluster's view for operators (/stats, and the index
// listing streams published anywhere) and its membership: a relay not heard
// from for downAfter reports is down; one heard again, or heard with a new
// instance (it restarted), is up, and is asked for its deny list.

// downAfter is how many reports a peer may miss before it counts as down.
const downAfter = 3

// maxReportTopics bounds one report (a relay with more topics reports the
// first ones only, which is a view, not a promise).
const maxReportTopics = 2000

// report is what a relay tells the others.
type report struct {
	Node     string                `json:"node"`
	Instance uint64                `json:"instance"`
	Since    time.Time             `json:"since"`
	Topics   []crossbar.TopicCount `json:"topics,omitempty"`
}

// peer is another relay as this one knows it.
type peer struct {
	node     string
	instance uint64
	up       bool
	since    time.Time // up, or down, since
	last     time.Time // its latest report
	topics   []crossbar.TopicCount
}

// startReports listens to the other relays' reports and starts sending
// this one's.
func (c *Cluster) startReports(ctx context.Context) error {
	c.started = time.Now()
	sub, err := c.nc.Subscribe(heartbeatSubj, c.onReport)
	if err != nil {
		return err
	}
	c.run(ctx, func(ctx context.Context) {
		defer func() { _ = sub.Unsubscribe() }()
		c.reportLoop(ctx)
	})
	return nil
}

// reportSoon asks for a report before the next tick.
func (c *Cluster) reportSoon() {
	select {
	case c.soon <- struct{}{}:
	default:
	}
}

func (c *Cluster) reportLoop(ctx context.Context) {
	tick := time.NewTicker(c.cfg.Report)
	defer tick.Stop()
	c.sendReport()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.soon:
			// Many changes at once make one report.
			t := time.NewTimer(c.cfg.Report / 10)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		c.sendReport()
		c.markDown(time.Now())
	}
}

func (c *Cluster) sendReport() {
	topics := c.local.LocalTopics()
	if len(topics) > maxReportTopics {
		topics = topics[:maxReportTopics]
	}
	c.mu.Lock()
	for i := range topics {
		topics[i].RateIn = float64(int64(topics[i].RateIn)) // whole bits per second are plenty
		topics[i].Watching = c.watches[topics[i].Name] != nil
	}
	c.mu.Unlock()
	b, err := json.Marshal(report{Node: c.cfg.Node, Instance: c.instance, Since: c.started, Topics: topics})
	if err != nil {
		return
	}
	if err := c.nc.Publish(heartbeatSubj, b); err != nil {
		c.log.WithField("err", err).Debug("cluster: report not sent")
	}
}

// onReport takes another relay's report.
func (c *Cluster) onReport(m *nats.Msg) {
	var r report
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Node == "" {
		c.counters.bad.Add(1)
		return
	}
	if r.Instance == c.instance {
		return
	}
	if r.Node == c.cfg.Node {
		c.warnOnce("same-node", "cluster: another relay uses this node name; give every relay its own VW_RELAY_NODE")
		return
	}
	now := time.Now()
	c.mu.Lock()
	p := c.peers[r.Node]
	if p == nil {
		p = &peer{node: r.Node}
		c.peers[r.Node] = p
	}
	joined := !p.up || p.instance != r.Instance
	if joined {
		p.up, p.since, p.instance = true, now, r.Instance
	}
	p.last, p.topics = now, r.Topics
	c.mu.Unlock()
	if joined {
		c.log.WithField("peer", r.Node).Info("cluster: peer up")
		c.peerUp(r.Node)
		// A relay that joins hears from every other at once.
		c.reportSoon()
	}
}

// markDown marks the peers not heard from for downAfter reports as down.
func (c *Cluster) markDown(now time.Time) {
	var down []string
	c.mu.Lock()
	for _, p := range c.peers {
		if p.up && now.Sub(p.last) > downAfter*c.cfg.Report {
			p.up, p.since, p.topics = false, now, nil
			down = append(down, p.node)
		}
	}
	c.mu.Unlock()
	for _, n := range down {
		c.log.WithField("peer", n).Warn("cluster: peer down")
	}
}

// warnOnce logs msg at warn the first time key comes up.
func (c *Cluster) warnOnce(key, msg string) {
	c.mu.Lock()
	seen := c.warned[key]
	c.warned[key] = true
	c.mu.Unlock()
	if !seen {
		c.log.Warn(msg)
	}
}

// Status describes the cluster: this relay's node, its peers, and the
// topics the peers that are up reported.
func (c *Cluster) Status() crossbar.ClusterStatus {
	st := crossbar.ClusterStatus{
		Node:     c.cfg.Node,
		Sent:     c.counters.sent.Load(),
		Dropped:  c.counters.dropped.Load(),
		Received: c.counters.received.Load(),
		Gaps:     c.counters.gaps.Load(),
	}
	byTopic := make(map[string][]crossbar.TopicCount)
	c.mu.Lock()
	st.Watching = len(c.watches)
	for _, p := range c.peers {
		st.Peers = append(st.Peers, crossbar.PeerStatus{Node: p.node, Up: p.up, Since: p.since})
		for _, t := range p.topics {
			t.Node = p.node
			byTopic[t.Name] = append(byTopic[t.Name], t)
		}
	}
	c.mu.Unlock()
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Node < st.Peers[j].Node })
	for name, rs := range byTopic {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Node < rs[j].Node })
		for i := range rs {
			rs[i].Name = ""
		}
		st.Topics = append(st.Topics, crossbar.ClusterTopic{Name: name, Relays: rs})
	}
	sort.Slice(st.Topics, func(i, j int) bool { return st.Topics[i].Name < st.Topics[j].Name })
	return st
}
