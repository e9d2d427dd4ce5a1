package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/agg"
	"github.com/vwlab/vw/internal/jsonhttp"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) { jsonhttp.Write(w, status, v) }

// fail answers err as {"error": "..."} with status, and logs it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	msg := jsonhttp.OneLine(err.Error())
	s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path, "status": status, "err": msg}).Warn("request refused")
	jsonhttp.Error(w, status, msg)
}

// refuse answers like fail, but logs through the rate limit: it is for
// refusals a web page could make vw stream send in a loop.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, err error) {
	msg := jsonhttp.OneLine(err.Error())
	s.refusals.Warn("http "+strconv.Itoa(status), logrus.Fields{"method": r.Method, "path": r.URL.Path, "status": status, "err": msg}, "request refused")
	jsonhttp.Error(w, status, msg)
}

// refusals are the kinds of error a rule change can end in: the HTTP status
// REST answers each with, and the reason the control API's log counts it
// under. The first that matches wins.
var refusals = []struct {
	err    error
	status int
	reason string
}{
	{errUnrecognised, http.StatusBadRequest, "unrecognised command"},
	{rules.ErrLimit, http.StatusBadRequest, "over a limit"},
	{rules.ErrBadRule, http.StatusBadRequest, "bad rule"},
	{rwc.ErrInvalid, http.StatusBadRequest, "bad rule"},
	{rules.ErrAPIRule, http.StatusBadRequest, "apiRule"},
	{rules.ErrNotFound, http.StatusNotFound, "not found"},
	{agg.ErrCodecMix, http.StatusConflict, "feeds do not mix"},
}

// refusalOf returns the status and reason of err; an error of no known
// kind is the server's fault, 500.
func refusalOf(err error) (status int, reason string) {
	for _, k := range refusals {
		if errors.Is(err, k.err) {
			return k.status, k.reason
		}
	}
	return http.StatusInternalServerError, "other"
}

// statusOf is the HTTP status of a rules error.
func statusOf(err error) int {
	status, _ := refusalOf(err)
	return status
}

// decode reads one JSON object of type T from the body, strictly: size
// capped, field names exactly as documented, no key twice, no unknown
// field, no trailing data; so a typo is an error rather than a silently
// different rule.
func decode[T any](s *Server, w http.ResponseWriter, r *http.Request) (T, int, error) {
	var zero T
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return zero, http.StatusRequestEntityTooLarge, errors.New("body larger than " + sizeString(s.cfg.MaxBody))
		}
		return zero, http.StatusBadRequest, errors.New("reading body: " + err.Error())
	}
	v, err := unmarshalStrict[T](body)
	switch {
	case errors.Is(err, io.EOF):
		return zero, http.StatusBadRequest, errors.New("empty body: send a JSON object")
	case err != nil:
		return zero, http.StatusBadRequest, errors.New("bad JSON: " + err.Error())
	}
	return v, 0, nil
}

func sizeString(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
