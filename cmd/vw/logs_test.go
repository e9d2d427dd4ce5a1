package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// logLine is one line of a JSON log.
type logLine map[string]any

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }

// has reports whether the line has a field k with a value that names
// something: not missing, null or "".
func (l logLine) has(k string) bool { return l[k] != nil && l[k] != "" }

// jsonLog parses a process's log, every line of which must be one JSON
// object with a time, a level and a message.
func jsonLog(t *testing.T, p *proc) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range lines(p.logText()) {
		var m logLine
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a log line is not JSON (%v): %s", err, l)
		}
		if _, err := time.Parse(time.RFC3339Nano, m.str("time")); err != nil || m.str("level") == "" || m.str("msg") == "" {
			t.Fatalf("a log line lacks time, level or msg: %s", l)
		}
		out = append(out, m)
	}
	return out
}

// TestJSONLogs runs a relay and vw stream with VW_LOG_FORMAT=json (and
// --log-format json) through a feed's life, a stream, a destination and a
// viewer: every line they log is a JSON object, and every line about a feed,
// stream, destination or relay client names it in a field, so a log
// collector can follow one of them.
func TestJSONLogs(t *testing.T) {
	relay := relayProc(t, "VW_LOG_FORMAT=json")
	port := freePort(t)
	stream := startVW(t, "127.0.0.1:"+strconv.Itoa(port), []string{"VW_PORT=" + strconv.Itoa(port), "VW_STATE=off", "VW_LOGLEVEL=debug"}, "stream", "--log-format", "json")
	feed := ffmpeg(t, "video", "http://"+stream.addr+"/ts/video0")
	postRule(t, stream, "/api/streams", `{"stream":"front","feeds":["video0"]}`)
	postRule(t, stream, "/api/destinations", `{"stream":"front","destination":"ws://`+relay.addr+`/in/lab1/front","id":"0"}`)
	v := watch(t, relay, "/out/lab1/front")
	v.grows(t, 20_000, 15*time.Second, "the stream at the relay")
	feed.Kill()
	if status, _ := httpDo(t, "DELETE", "http://"+stream.addr+"/api/destinations/0", ""); status != 200 {
		t.Fatalf("DELETE destination: %d", status)
	}
	if err := stream.stop(t); err != nil {
		t.Fatalf("vw stream: %v", err)
	}
	if err := relay.stop(t); err != nil {
		t.Fatalf("vw relay: %v", err)
	}

	// Which lines must name what, by the process, the component that logs
	// and the message's start; must: the run above logs such a line.
	rules := []struct {
		p                 *proc
		component, prefix string
		fields            []string
		must              bool
	}{
		{stream, "api", "feed ", []string{"feed"}, true},
		{stream, "agg", "feed ", []string{"feed", "stream"}, true},
		{stream, "agg", "", []string{"stream"}, true},
		{stream, "rules", "stream rule", []string{"stream"}, true},
		{stream, "rules", "destination rule", []string{"id"}, true},
		{stream, "rwc", "", []string{"id", "stream", "url"}, true},
		{relay, "relay", "stream ", []string{"stream"}, true},
		{relay, "relay", "connected", []string{"id", "url", "role"}, true},
		{relay, "relay", "disconnected", []string{"id", "url", "role"}, true},
		{relay, "relay", "viewer dropped", []string{"id", "url"}, false},
		{relay, "relay", "client closed", []string{"id", "url"}, false},
		{relay, "relay", "connection refused", []string{"url"}, false},
	}
	seen := make([]int, len(rules))
	for _, p := range []*proc{stream, relay} {
		for _, l := range jsonLog(t, p) {
			for i, r := range rules {
				if r.p != p || l.str("component") != r.component || !strings.HasPrefix(l.str("msg"), r.prefix) {
					continue
				}
				seen[i]++
				for _, f := range r.fields {
					if !l.has(f) {
						t.Errorf("a %s line has no %q field: %v", r.component, f, l)
					}
				}
			}
		}
	}
	for i, r := range rules {
		if r.must && seen[i] == 0 {
			t.Errorf("no %s line starting %q was logged", r.component, r.prefix)
		}
	}
}

// TestLogFormat: text is the default; a format other than text or json is
// refused at start, from the flag or the environment.
func TestLogFormat(t *testing.T) {
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // start and stop at once: only the start's lines matter
	if err := run(ctx, []string{"relay", "--listen", "127.0.0.1:0"}, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(stderr.String(), "\n")
	if !strings.HasPrefix(first, `time="`) || !strings.Contains(first, "level=") {
		t.Fatalf("the default log format is not text: %q", first)
	}

	if err := run(ctx, []string{"relay", "--log-format", "xml"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "use text or json") {
		t.Fatalf("--log-format xml: %v", err)
	}
	t.Setenv("VW_LOG_FORMAT", "yaml")
	if err := run(ctx, []string{"stream", "--state", "off"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "use text or json") {
		t.Fatalf("VW_LOG_FORMAT=yaml: %v", err)
	}
}
