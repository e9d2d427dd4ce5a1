package rwc

import (
	"net"
	"net/url"
	"strings"

	"github.com/sirupsen/logrus"
)

// authority returns the host part of a URL as written, found textually so
// that a URL that does not even parse is handled too: what follows
// "scheme://" (or the start) up to the first / ? or #.
func authority(u string) (start, end int) {
	if i := strings.Index(u, "://"); i >= 0 {
		start = i + 3
	}
	end = len(u)
	if j := strings.IndexAny(u[start:], "/?#"); j >= 0 {
		end = start + j
	}
	return start, end
}

// hasUserinfo reports whether u carries a user name or password
// (ws://user:pass@host/). The websocket client refuses such URLs, and they
// must never reach a log.
func hasUserinfo(u string) bool {
	start, end := authority(u)
	return strings.Contains(u[start:end], "@")
}

// redactURL returns u with any user name and password replaced by "…".
func redactURL(u string) string {
	start, end := authority(u)
	at := strings.LastIndex(u[start:end], "@")
	if at < 0 {
		return u
	}
	return u[:start] + "…" + u[start+at:]
}

// warnPlainToken warns when rule sends its token in clear text: over ws://
// to a host other than this one, where anyone on the path can read it and
// use it. Set calls it once per rule, when the URL or token changes.
func (r *RWC) warnPlainToken(rule Rule) {
	if rule.Token == "" {
		return
	}
	p, err := url.Parse(rule.Destination)
	if err != nil || p.Scheme != "ws" || isLoopback(p.Hostname()) {
		return
	}
	r.log.WithFields(logrus.Fields{"id": rule.ID, "url": rule.Destination}).
		Warn("this destination's token is sent unencrypted (ws:// to another host): anyone on the way can read it and use it; use wss://")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
