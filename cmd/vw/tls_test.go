package main

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
)

// TestTLSEndToEnd runs the relay with a certificate from a lab's own CA:
// vw stream trusts it through VW_CA_FILE and pushes over wss://, and a
// viewer trusting the CA receives the stream. With the wrong CA, or none
// (the system's roots), vw stream refuses the relay and says why.
func TestTLSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, dir, "lab-ca")
	other := testutil.NewCA(t, dir, "other-ca")
	certFile, keyFile := ca.Server(t, dir)
	relay := relayProc(t, "VW_RELAY_TLS_CERT="+certFile, "VW_RELAY_TLS_KEY="+keyFile)
	pool := ca.Pool()
	relay.baseURL = "https://" + relay.addr
	relay.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	good := streamProc(t, "VW_CA_FILE="+ca.PEMFile)
	ffmpeg(t, "video", "http://"+good.addr+"/ts/video0")
	postRule(t, good, "/api/destinations", `{"stream":"video0","destination":"wss://`+relay.addr+`/in/lab1/cam","id":"0"}`)

	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial("wss://"+relay.addr+"/out/lab1/cam", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || len(b) == 0 {
		t.Fatalf("no data over wss: %v", err)
	}

	for _, tc := range []struct{ name, ca string }{{"wrong CA", other.PEMFile}, {"system roots only", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			bad := streamProc(t, "VW_CA_FILE="+tc.ca)
			postRule(t, bad, "/api/destinations", `{"stream":"video0","destination":"wss://`+relay.addr+`/in/lab1/bad","id":"0"}`)
			testutil.Eventually(t, 10*time.Second, func() bool {
				return strings.Contains(bad.logText(), "certificate signed by unknown authority")
			}, "vw stream did not log why it refused the relay:\n%s", bad.logText())
			if ts, ok := topicStats(t, relay, "out/lab1/bad"); ok && ts.Publishers > 0 {
				t.Fatal("vw stream connected to a relay it should not trust")
			}
		})
	}
}
