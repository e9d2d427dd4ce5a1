package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
)

// TestHostAPIClosedByDefault checks the lab host's control surface: vw
// stream listens on loopback unless told otherwise; told to listen wider it
// refuses to start without an API token, or with one shorter than 16 bytes;
// with one, the API answers 401 to a request without it, and ffmpeg must
// send it too.
func TestHostAPIClosedByDefault(t *testing.T) {
	s := streamProc(t)
	// The port accepts connections just before the line is logged.
	testutil.Eventually(t, 5*time.Second, func() bool {
		return strings.Contains(s.logText(), `msg="vw stream listening" addr="127.0.0.1:`)
	}, "vw stream does not listen on loopback by default:\n%s", s.logText())

	// A vw stream that wrongly starts would run until killed: the wait has
	// a deadline, so that the test fails instead of hanging.
	port := freePort(t)
	refused := testutil.Start(t, vwCmd(t, []string{"VW_HOST=0.0.0.0", fmt.Sprintf("VW_PORT=%d", port), "VW_STATE=off"}, "stream"))
	if err := refused.Wait(t, 10*time.Second); err == nil || !strings.Contains(refused.Output(), "VW_API_TOKEN") {
		t.Fatalf("VW_HOST=0.0.0.0 without a token: %v\n%s", err, refused.Output())
	}
	refused = testutil.Start(t, vwCmd(t, []string{"VW_HOST=0.0.0.0", fmt.Sprintf("VW_PORT=%d", port), "VW_API_TOKEN=123456789012345", "VW_STATE=off"}, "stream"))
	if err := refused.Wait(t, 10*time.Second); err == nil || !strings.Contains(refused.Output(), "VW_API_TOKEN is 15 bytes") {
		t.Fatalf("VW_HOST=0.0.0.0 with a 15-byte token: %v\n%s", err, refused.Output())
	}

	port = freePort(t)
	open := startVW(t, fmt.Sprintf("127.0.0.1:%d", port),
		[]string{"VW_HOST=0.0.0.0", fmt.Sprintf("VW_PORT=%d", port), "VW_API_TOKEN=lab1-api-secret-0123", "VW_STATE=off"}, "stream")
	for _, path := range []string{"/api/streams/all", "/api/destinations/all", "/ws/video0"} {
		if status, body := httpDo(t, "GET", open.baseURL+path, ""); status != 401 || !strings.Contains(body, "API token") {
			t.Fatalf("GET %s without the token: %d %s", path, status, body)
		}
	}
	if status, _ := httpDo(t, "POST", open.baseURL+"/ts/video0", "x"); status != 401 {
		t.Fatalf("ingest without the token: %d", status)
	}
	if status, body := httpDo(t, "GET", open.baseURL+"/healthcheck", ""); status != 200 || body != `"ok"` {
		t.Fatalf("healthcheck: %d %s", status, body)
	}
	// With the token, ffmpeg's feed gets in (it sends it with -headers).
	ffmpeg(t, "video", open.baseURL+"/ts/video0", "-headers", "Authorization: Bearer lab1-api-secret-0123\r\n")
	v := watchURL(t, "ws://"+open.addr+"/ws/video0", http.Header{"Authorization": {"Bearer lab1-api-secret-0123"}})
	v.grows(t, 20_000, 10*time.Second, "preview of a feed sent with the token")
}
