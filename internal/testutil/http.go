package testutil

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Req is one HTTP request a test sends. Zero fields: GET, no body, the
// default client.
type Req struct {
	Method string
	URL    string
	Body   string
	// Header holds name, value pairs; a "Host" pair sets the request's Host.
	Header []string
	// Token, if set, is sent as Authorization: Bearer.
	Token  string
	Client *http.Client
}

// Resp is an answer with its body read.
type Resp struct {
	Status int
	Header http.Header
	Body   string
}

// Do sends r and returns the answer, failing the test if there is none
// within 30 s.
func Do(t testing.TB, r Req) Resp {
	t.Helper()
	resp, err := TryDo(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method(), r.URL, err)
	}
	return resp
}

// TryDo is Do for goroutines other than the test's: it returns the error.
func TryDo(r Req) (Resp, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method(), r.URL, strings.NewReader(r.Body))
	if err != nil {
		return Resp{}, err
	}
	for i := 0; i+1 < len(r.Header); i += 2 {
		// net/http sends req.Host and ignores a Host header.
		if http.CanonicalHeaderKey(r.Header[i]) == "Host" {
			req.Host = r.Header[i+1]
			continue
		}
		req.Header.Set(r.Header[i], r.Header[i+1])
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	c := r.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return Resp{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Resp{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}, err
}

func (r Req) method() string {
	if r.Method == "" {
		return http.MethodGet
	}
	return r.Method
}
