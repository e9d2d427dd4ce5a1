package rwc

import (
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/vwlab/vw/hub"
)

// A URL with a user name or password is refused, and the error (which is
// answered and logged) does not repeat them.
func TestUserinfoRefusedUnsaid(t *testing.T) {
	f := newFixture(t, Config{})
	for _, u := range []string{
		"ws://lab1:hunter2@relay.example/in/x",
		"wss://hunter2@relay.example:443/in/x",
		"ws://lab1:hunter2@[::1/x", // not even a URL
		"lab1:hunter2@relay.example/in/x",
	} {
		err := f.r.Set(Rule{Stream: "cam", Destination: u, ID: "0"})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "user name or password") {
			t.Fatalf("%s: %v", u, err)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "lab1") {
			t.Fatalf("the error repeats the credentials: %v", err)
		}
	}
	if n := len(f.r.All()); n != 0 {
		t.Fatalf("%d rules stored", n)
	}
}

// A token sent over ws:// to another host is warned about once per rule:
// not again when the same rule is set again or moves to another stream,
// again when its URL changes; never for wss://, loopback, or no token.
func TestPlainTokenWarnedOnce(t *testing.T) {
	log, hook := logtest.NewNullLogger()
	r := newRWC(t, Config{Recordings: t.TempDir()}, hub.New(), logrus.NewEntry(log))
	t.Cleanup(r.Close)
	warnings := func() int {
		n := 0
		for _, e := range hook.AllEntries() {
			if strings.Contains(e.Message, "unencrypted") {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		rule Rule
		want int
	}{
		{Rule{Stream: "cam", Destination: "ws://relay.example/in/a", ID: "0", Token: "t"}, 1},
		{Rule{Stream: "cam", Destination: "ws://relay.example/in/a", ID: "0", Token: "t"}, 1},
		{Rule{Stream: "mic", Destination: "ws://relay.example/in/a", ID: "0", Token: "t"}, 1},
		{Rule{Stream: "mic", Destination: "ws://relay.example/in/b", ID: "0", Token: "t"}, 2},
		{Rule{Stream: "mic", Destination: "wss://relay.example/in/b", ID: "0", Token: "t"}, 2},
		{Rule{Stream: "mic", Destination: "ws://127.0.0.1:1/in/b", ID: "1", Token: "t"}, 2},
		{Rule{Stream: "mic", Destination: "ws://localhost:1/in/b", ID: "2", Token: "t"}, 2},
		{Rule{Stream: "mic", Destination: "ws://relay.example/in/c", ID: "3"}, 2},
	} {
		if err := r.Set(c.rule); err != nil {
			t.Fatal(err)
		}
		if got := warnings(); got != c.want {
			t.Fatalf("after %+v: %d warnings, want %d", c.rule, got, c.want)
		}
	}
}
