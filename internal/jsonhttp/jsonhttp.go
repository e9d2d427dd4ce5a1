// Package jsonhttp writes the JSON answers of vw's HTTP servers (vw stream's
// api, the relay, auth), so that every client reads every answer, and every
// refusal, the same way: a value, or {"error":"one line"} with a 4xx or 5xx.
package jsonhttp

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Write answers v as JSON with status. Answers are not cached (they change
// with the rules, and some carry an access code) and never sniffed as
// another type.
func Write(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// Error answers {"error": msg} with status, msg folded onto one line.
func Error(w http.ResponseWriter, status int, msg string) {
	Write(w, status, map[string]string{"error": OneLine(msg)})
}

// OneLine folds every run of white space in s, line breaks included, into
// one space.
func OneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
