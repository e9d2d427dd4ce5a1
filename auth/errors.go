package auth

import (
	"errors"
	"net/http"

	"github.com/vwlab/vw/internal/jsonhttp"
)

// Error is a refusal with the HTTP status to answer it with: 401 when the
// credentials are missing, invalid, expired, for another audience, denied or
// a spent code; 403 when a valid token lacks the scope or path; 400 for a
// malformed route or request. Reason is one line, safe to show the client.
type Error struct {
	Code   int
	Reason string
}

func (e *Error) Error() string { return e.Reason }

// Status is the HTTP status to answer with.
func (e *Error) Status() int { return e.Code }

func unauthorized(reason string) *Error {
	return &Error{Code: http.StatusUnauthorized, Reason: reason}
}

func badRequest(reason string) *Error {
	return &Error{Code: http.StatusBadRequest, Reason: reason}
}

// WriteError answers err as JSON {"error":"…"} with its Status (500 for an
// error that has none, without its text, which may be internal).
func WriteError(w http.ResponseWriter, err error) {
	code, reason := http.StatusInternalServerError, "internal error"
	var st interface{ Status() int }
	if errors.As(err, &st) {
		code, reason = st.Status(), err.Error()
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vw"`)
	}
	writeJSON(w, code, map[string]string{"error": reason})
}

func writeJSON(w http.ResponseWriter, code int, v any) { jsonhttp.Write(w, code, v) }
