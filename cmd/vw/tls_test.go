package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/internal/testutil"
)

// testCA is a certificate authority made for one test, as a self-hosted lab
// would make its own.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string // path of the CA certificate file
}

func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	path := filepath.Join(dir, name+".pem")
	writePEM(t, path, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, pem: path}
}

// server issues a certificate for 127.0.0.1 and returns its cert and key
// files.
func (ca *testCA) server(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "relay"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "relay.pem"), filepath.Join(dir, "relay-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSEndToEnd runs the relay with a certificate from a lab's own CA:
// vw stream trusts it through VW_CA_FILE and pushes over wss://, and a
// viewer trusting the CA receives the stream. With the wrong CA, or none
// (the system's roots), vw stream refuses the relay and says why.
func TestTLSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, "lab-ca")
	other := newCA(t, dir, "other-ca")
	certFile, keyFile := ca.server(t, dir)
	relay := relayProc(t, "VW_RELAY_TLS_CERT="+certFile, "VW_RELAY_TLS_KEY="+keyFile)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	relay.baseURL = "https://" + relay.addr
	relay.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	good := streamProc(t, "VW_CA_FILE="+ca.pem)
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

	for _, tc := range []struct{ name, ca string }{{"wrong CA", other.pem}, {"system roots only", ""}} {
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
