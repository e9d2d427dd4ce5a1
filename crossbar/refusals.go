package crossbar

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

// refusals counts the websocket handshakes the relay refused, by HTTP
// status (route, auth, limits, or a handshake gorilla found malformed), for
// /metrics. A handshake is counted as its status is written, so every
// refusal counts whichever check made it.
type refusals struct {
	by [200]atomic.Uint64 // by status - 400
}

// usualRefusals are reported even while zero, so that an alert on their
// increase has a series from the start.
var usualRefusals = []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests, http.StatusServiceUnavailable}

// counts returns the refusals by status: the usual ones, and any other
// that has happened.
func (rf *refusals) counts() map[string]uint64 {
	out := map[string]uint64{}
	for _, st := range usualRefusals {
		out[strconv.Itoa(st)] = 0
	}
	for i := range rf.by {
		if n := rf.by[i].Load(); n > 0 {
			out[strconv.Itoa(400+i)] = n
		}
	}
	return out
}

// refusalWriter counts the status of a handshake's answer when it is a
// refusal. An upgrade hijacks the connection instead of writing a status.
type refusalWriter struct {
	http.ResponseWriter
	rf *refusals
}

func (w *refusalWriter) WriteHeader(status int) {
	if status >= 400 && status < 600 {
		w.rf.by[status-400].Add(1)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *refusalWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the HTTP server cannot hand over the connection (no http.Hijacker)")
	}
	return hj.Hijack()
}

func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
