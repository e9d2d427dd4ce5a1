package jsonhttp

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestError(t *testing.T) {
	w := httptest.NewRecorder()
	Error(w, http.StatusBadRequest, "bad rule:\n  two\tlines ")
	if w.Code != 400 || w.Body.String() != `{"error":"bad rule: two lines"}`+"\n" {
		t.Fatalf("got %d %q", w.Code, w.Body)
	}
	for k, v := range map[string]string{"Content-Type": "application/json", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}
