package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
)

// Server certificates load as key pairs and verify for their IPs against
// their own CA, given as a pool or as its file, and against no other CA.
func TestCA(t *testing.T) {
	dir := t.TempDir()
	ca := NewCA(t, dir, "lab-ca")
	other := NewCA(t, dir, "other-ca")
	fromFile := x509.NewCertPool()
	pem, err := os.ReadFile(ca.PEMFile)
	if err != nil || !fromFile.AppendCertsFromPEM(pem) {
		t.Fatalf("CA file %s does not hold a PEM certificate: %v", ca.PEMFile, err)
	}
	leaf := func(ips ...net.IP) *x509.Certificate {
		certFile, keyFile := ca.Server(t, dir, ips...)
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatalf("server files do not load as a key pair: %v", err)
		}
		cert, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	// Both issued into one folder: the second must not replace the first.
	v4, v6 := leaf(), leaf(net.IPv6loopback)
	for _, tc := range []struct {
		name  string
		cert  *x509.Certificate
		pool  *x509.CertPool
		host  string
		valid bool
	}{
		{"own CA", v4, ca.Pool(), "127.0.0.1", true},
		{"own CA file", v4, fromFile, "127.0.0.1", true},
		{"other CA", v4, other.Pool(), "127.0.0.1", false},
		{"other IP", v4, ca.Pool(), "::1", false},
		{"given IP", v6, ca.Pool(), "::1", true},
		{"not the default", v6, ca.Pool(), "127.0.0.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cert.Verify(x509.VerifyOptions{Roots: tc.pool, DNSName: tc.host})
			if (err == nil) != tc.valid {
				t.Errorf("Verify for %s: %v, want valid=%v", tc.host, err, tc.valid)
			}
		})
	}
}
