package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/auth"
)

// Auth is cluster-wide (tokens already are: every relay has the same secret
// and audience). A deny on any relay is published on denySubj and adopted
// by every other at once, which closes the token's connections there too;
// a relay that comes up (or comes back) asks each peer it sees for its deny
// list, and keeps what it learns in its own state file. An access code
// names the relay that issued it (its node tag in front); a relay presented
// another's code asks the issuer to spend it, so it opens a stream once,
// on whichever relay the browser reached.

const (
	// authTimeout bounds a request to another relay (a deny list, a code).
	authTimeout = 2 * time.Second
	// joinWait is how long Start waits for the first peer's deny list, so
	// that a relay joining a cluster does not serve a denied token in its
	// first moments.
	joinWait = 3 * time.Second
)

// denyMsg is a deny on one relay, for the others.
type denyMsg struct {
	Instance uint64        `json:"instance"`
	Denials  []auth.Denial `json:"denials"`
}

// redeemReq asks the issuer to spend a code; redeemReply is its answer.
type redeemReq struct {
	Code  string `json:"code"`
	Route string `json:"route"`
}

type redeemReply struct {
	Grant  *auth.Grant `json:"grant,omitempty"`
	Status int         `json:"status,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// sharing is the cluster's part of auth.
type sharing struct {
	ctx        context.Context
	removeDeny func()
	subs       []*nats.Subscription
	adopting   map[string]int // entries being adopted, not to be passed on
	synced     chan struct{}  // closed at the first peer's deny list
	syncedOnce bool
}

// startAuth shares the relay's denies and codes with the cluster; an open
// relay has neither.
func (c *Cluster) startAuth(ctx context.Context) error {
	c.share.ctx = ctx
	c.share.synced = make(chan struct{})
	c.share.adopting = make(map[string]int)
	a := c.auth
	if a == nil || a.Open() {
		return nil
	}
	for subj, h := range map[string]nats.MsgHandler{
		denySubj:                           c.onRemoteDeny,
		nodeSubject(c.tag, verbDenyList):   c.serveDenyList,
		nodeSubject(c.tag, verbRedeemCode): c.serveRedeem,
	} {
		sub, err := c.nc.Subscribe(subj, h)
		if err != nil {
			return err
		}
		c.share.subs = append(c.share.subs, sub)
	}
	c.share.removeDeny = a.OnDeny(c.onLocalDeny)
	a.ShareCodes(c.tag, c.redeemRemote)
	return nil
}

func (c *Cluster) stopAuth() {
	if c.share.removeDeny != nil {
		c.share.removeDeny()
	}
	for _, s := range c.share.subs {
		_ = s.Unsubscribe()
	}
}

// waitJoined waits, when this relay joins others, for the first peer's deny
// list (or joinWait).
func (c *Cluster) waitJoined() {
	if c.auth == nil || c.auth.Open() || (len(c.cfg.Routes) == 0 && c.cfg.NATS == "") {
		return
	}
	select {
	case <-c.share.synced:
	case <-time.After(joinWait):
		c.log.Warn("cluster: no other relay answered within 3 s; starting with this relay's own deny list")
	}
}

func adoptKey(d auth.Denial) string { return d.JTI + "\x00" + d.Path }

// onLocalDeny passes a deny made here (or lengthened) to the other relays;
// one adopted from them is not passed back.
func (c *Cluster) onLocalDeny(d auth.Denial) {
	c.mu.Lock()
	adopted := c.share.adopting[adoptKey(d)] > 0
	c.mu.Unlock()
	if adopted {
		return
	}
	b, err := json.Marshal(denyMsg{Instance: c.instance, Denials: []auth.Denial{d}})
	if err == nil {
		err = c.nc.Publish(denySubj, b)
	}
	if err != nil {
		c.log.WithFields(logrus.Fields{"id": d.JTI, "err": err}).Error("cluster: a deny could not be passed to the other relays")
	}
}

// adopt applies other relays' denies here.
func (c *Cluster) adopt(list []auth.Denial) {
	c.mu.Lock()
	for _, d := range list {
		c.share.adopting[adoptKey(d)]++
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		for _, d := range list {
			k := adoptKey(d)
			if c.share.adopting[k]--; c.share.adopting[k] <= 0 {
				delete(c.share.adopting, k)
			}
		}
		c.mu.Unlock()
	}()
	if _, err := c.auth.Adopt(list); err != nil {
		c.log.WithField("err", err).Warn("cluster: another relay's denies not all kept")
	}
}

func (c *Cluster) onRemoteDeny(m *nats.Msg) {
	var dm denyMsg
	if err := json.Unmarshal(m.Data, &dm); err != nil {
		c.counters.bad.Add(1)
		return
	}
	if dm.Instance != c.instance {
		c.adopt(dm.Denials)
	}
}

func (c *Cluster) serveDenyList(m *nats.Msg) {
	b, err := json.Marshal(c.auth.Denials())
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil {
		c.log.WithField("err", err).Debug("cluster: deny list not sent")
	}
}

// peerUp asks a peer that came up for its deny list.
func (c *Cluster) peerUp(node string) {
	if c.auth == nil || c.auth.Open() {
		return
	}
	c.run(c.share.ctx, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, authTimeout)
		defer cancel()
		m, err := c.nc.RequestWithContext(ctx, nodeSubject(nodeTag(node), verbDenyList), nil)
		var list []auth.Denial
		if err == nil {
			err = json.Unmarshal(m.Data, &list)
		}
		if err != nil {
			c.log.WithFields(logrus.Fields{"peer": node, "err": err}).Warn("cluster: no deny list from a peer")
			return
		}
		c.adopt(list)
		c.mu.Lock()
		first := !c.share.syncedOnce
		c.share.syncedOnce = true
		c.mu.Unlock()
		if first {
			close(c.share.synced)
		}
	})
}

// serveRedeem spends, for another relay, a code this one issued.
func (c *Cluster) serveRedeem(m *nats.Msg) {
	var req redeemReq
	var rep redeemReply
	if err := json.Unmarshal(m.Data, &req); err != nil {
		rep = redeemReply{Status: http.StatusBadRequest, Error: "bad request"}
	} else if g, err := c.auth.RedeemLocal(req.Code, req.Route); err != nil {
		rep = redeemReply{Status: http.StatusUnauthorized, Error: err.Error()}
		var ae *auth.Error
		if errors.As(err, &ae) {
			rep.Status = ae.Code
		}
	} else {
		rep.Grant = g
	}
	b, _ := json.Marshal(rep)
	if err := m.Respond(b); err != nil {
		c.log.WithField("err", err).Debug("cluster: code answer not sent")
	}
}

// redeemRemote asks the relay that issued code to spend it for route.
func (c *Cluster) redeemRemote(code, route string) (*auth.Grant, error) {
	tag := code[:len(c.tag)]
	if !c.knowsTag(tag) {
		return nil, &auth.Error{Code: http.StatusUnauthorized, Reason: "code unknown or already used"}
	}
	b, err := json.Marshal(redeemReq{Code: code, Route: route})
	if err != nil {
		return nil, err
	}
	m, err := c.nc.Request(nodeSubject(tag, verbRedeemCode), b, authTimeout)
	if err != nil {
		c.log.WithFields(logrus.Fields{"url": route, "err": err}).Warn("cluster: the relay that issued a code did not answer")
		return nil, &auth.Error{Code: http.StatusServiceUnavailable, Reason: "the relay that issued the code did not answer; get a new code"}
	}
	var rep redeemReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return nil, &auth.Error{Code: http.StatusBadGateway, Reason: "the relay that issued the code answered nonsense"}
	}
	if rep.Grant == nil {
		if rep.Status == 0 {
			rep.Status = http.StatusUnauthorized
		}
		return nil, &auth.Error{Code: rep.Status, Reason: rep.Error}
	}
	return rep.Grant, nil
}

// knowsTag reports whether tag names a peer that is up.
func (c *Cluster) knowsTag(tag string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.peers {
		if p.up && nodeTag(p.node) == tag {
			return true
		}
	}
	return false
}
