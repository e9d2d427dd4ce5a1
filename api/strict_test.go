package api

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vwlab/vw/rules"
)

// TestStrictJSON: field names must be spelled exactly, no key may appear
// twice (encoding/json alone lets both through), and destination ids follow
// the rules of stream names; each is a 400 over REST and an error reply
// over the control API, and nothing is stored.
func TestStrictJSON(t *testing.T) {
	f := newFixture(t, Config{}, rules.Config{})
	for _, c := range []struct {
		name, path, body, reason string
	}{
		{"capitalised field", "/api/streams", `{"Stream":"s","feeds":["a"]}`, `unknown field "Stream" (field names are case-sensitive: "stream")`},
		{"upper-case field", "/api/destinations", `{"stream":"s","DESTINATION":"ws://h/in/x","id":"0"}`, `unknown field "DESTINATION"`},
		{"duplicate key", "/api/streams", `{"stream":"s","feeds":["a"],"stream":"t"}`, `field "stream" appears twice`},
		{"duplicate id", "/api/destinations", `{"stream":"s","destination":"ws://h/in/x","id":"0","id":"apiRule"}`, `field "id" appears twice`},
		{"id with a space", "/api/destinations", `{"stream":"s","destination":"ws://h/in/x","id":"a b"}`, `destination id "a b": use 1 to 200 of`},
		{"id with dots", "/api/destinations", `{"stream":"s","destination":"ws://h/in/x","id":"../x"}`, `destination id "../x"`},
		{"id with an empty segment", "/api/destinations", `{"stream":"s","destination":"ws://h/in/x","id":"a//b"}`, "empty path segment"},
		{"id too long", "/api/destinations", `{"stream":"s","destination":"ws://h/in/x","id":"` + strings.Repeat("x", 201) + `"}`, "1 to 200"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.do(t, "POST", c.path, c.body, "Content-Type", "application/json")
			if status != 400 || !strings.Contains(body, strings.ReplaceAll(c.reason, `"`, `\"`)) {
				t.Fatalf("got %d %s, want 400 mentioning %s", status, body, c.reason)
			}
		})
	}
	for _, c := range []struct{ send, reason string }{
		{`{"verb":"add","what":"stream","rule":{"stream":"s","Feeds":["a"]}}`, `unknown field "Feeds"`},
		{`{"verb":"add","what":"destination","rule":{"stream":"s","destination":"ws://h/in/x","id":"0","id":"1"}}`, `field "id" appears twice`},
		{`{"verb":"add","what":"destination","rule":{"stream":"s","destination":"ws://h/in/x","id":"a b"}}`, `destination id "a b"`},
		{`{"verb":"list","what":"stream","which":"all","verb":"delete"}`, `field "verb" appears twice`},
	} {
		reply := string(f.srv.Command(context.Background(), []byte(c.send)))
		if !strings.Contains(reply, strings.ReplaceAll(c.reason, `"`, `\"`)) {
			t.Fatalf("%s: %s, want an error mentioning %s", c.send, reply, c.reason)
		}
	}
	if n := len(f.rules.Streams()) + len(f.rules.Destinations()); n != 0 {
		t.Fatalf("%d rules stored", n)
	}
	// Ids as the README uses them pass.
	for _, id := range []string{"0", "cam-1", "lab1/front", "A_b"} {
		body := `{"stream":"s","destination":"ws://h/in/x","id":"` + id + `"}`
		if status, got := f.do(t, "POST", "/api/destinations", body, "Content-Type", "application/json"); status != 200 {
			t.Fatalf("id %q: %d %s", id, status, got)
		}
	}
}

// TestCheckStrictDepth: a body nested past maxDepth is refused rather than
// walked.
func TestCheckStrictDepth(t *testing.T) {
	deep := `{"stream":` + strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2) + `}`
	if err := checkStrict([]byte(deep), nil); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("checkStrict of %d levels: %v", maxDepth+2, err)
	}
}

// FuzzCheckStrict: for any input, checkStrict never panics, and whatever it
// accepts starts with a valid JSON value. The oracle keeps numbers as text:
// a number too long for a float64 is still JSON.
func FuzzCheckStrict(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"a":2}`, `[{"x":[1,{"y":2,"y":3}]}]`, `{"stream":"s","feeds":["a"]}`, `{`, `"x"`, strings.Repeat("4", 320)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v json.RawMessage
		if checkStrict(b, nil) == nil && json.NewDecoder(bytes.NewReader(b)).Decode(&v) != nil {
			t.Fatalf("accepted %q, which is not JSON", b)
		}
	})
}
