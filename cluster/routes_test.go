package cluster

import (
	"testing"
	"time"

	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/internal/testutil"
)

// peerNames lists the peers n sees up.
func peerNames(n *node) []string {
	var out []string
	for _, p := range n.cl.Status().Peers {
		if p.Up {
			out = append(out, p.Node)
		}
	}
	return out
}

// A relay without the cluster secret cannot join: its route is refused,
// while one with the secret, started at the same time, joins.
func TestRouteWithoutTheSecretIsRefused(t *testing.T) {
	a := startNode(t, "a", crossbar.Config{})
	seed := []string{"nats://" + a.cl.ClusterAddr().String()}
	good := startNodeCfg(t, Config{Node: "good", Listen: "127.0.0.1:0", Routes: seed, Secret: testSecret, Report: 200 * time.Millisecond}, crossbar.Config{})
	bad := startNodeCfg(t, Config{Node: "bad", Listen: "127.0.0.1:0", Routes: seed, Secret: []byte("another-secret-0123456789abcdef-xyz"), Report: 200 * time.Millisecond}, crossbar.Config{})
	testutil.Eventually(t, 10*time.Second, func() bool { return upPeers(good) == 1 }, "the relay with the secret joins")
	// Many reports and route retries later, still apart.
	if testutil.WaitFor(2*time.Second, func() bool { return upPeers(bad) > 0 || len(peerNames(a)) > 1 }) {
		t.Fatalf("a relay with another secret joined: a sees %v, bad sees %v", peerNames(a), peerNames(bad))
	}
	if n := a.cl.srv.NumRoutes(); n == 0 {
		t.Error("a has no route at all: the control failed")
	}
}

// Routes under TLS: relays with certificates from the cluster's CA join; one
// whose certificate another CA signed does not, even with the secret.
func TestRoutesUnderTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, dir, "cluster-ca")
	other := testutil.NewCA(t, dir, "other-ca")
	tlsCfg := func(name string, signer *testutil.CA, routes ...string) Config {
		cert, key := signer.Peer(t, dir)
		return Config{Node: name, Listen: "127.0.0.1:0", Routes: routes, Secret: testSecret, Report: 200 * time.Millisecond,
			TLSCert: cert, TLSKey: key, TLSCA: ca.PEMFile}
	}
	a := startNodeCfg(t, tlsCfg("a", ca), crossbar.Config{})
	seed := "nats://" + a.cl.ClusterAddr().String()
	b := startNodeCfg(t, tlsCfg("b", ca, seed), crossbar.Config{})
	stranger := startNodeCfg(t, tlsCfg("stranger", other, seed), crossbar.Config{})
	testutil.Eventually(t, 10*time.Second, func() bool { return upPeers(b) == 1 && upPeers(a) == 1 }, "b joins a over TLS")
	if testutil.WaitFor(2*time.Second, func() bool { return upPeers(stranger) > 0 || len(peerNames(a)) > 1 }) {
		t.Fatalf("a relay with another CA's certificate joined: a sees %v", peerNames(a))
	}
	// And data flows over the TLS route.
	v := view(t, b, "/out/tls")
	testutil.Eventually(t, 5*time.Second, func() bool { return remoteInterest(a, "/out/tls") == 1 }, "b's interest reaches a")
	pub := dial(t, a, "/in/tls")
	for i := range 20 {
		if err := pub.WriteMessage(2, stamped(i, 3000)); err != nil {
			t.Fatal(err)
		}
	}
	readStamped(t, v, 0, 20)
}
