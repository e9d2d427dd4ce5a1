package main

// The checks of the cluster settings: what a running vw relay does with
// VW_RELAY_NODE, VW_RELAY_CLUSTER_* and VW_RELAY_NATS*. The other relays
// it meets are real relays run in the test's process (package cluster with
// a crossbar relay), or a plain NATS server.

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/vwlab/vw/cluster"
	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/testutil"
)

const (
	clusterSecretA = "cluster-secret-A-0123456789abcdef-xyz"
	clusterSecretB = "cluster-secret-B-0123456789abcdef-xyz"
)

// seedRelay runs, in the test's process, a relay named name that others
// may join with cfg's secret (and TLS); it returns its route URL.
func seedRelay(t *testing.T, name string, cfg cluster.Config) string {
	t.Helper()
	cfg.Node, cfg.Listen = name, "127.0.0.1:0"
	log := testutil.Log(t)
	cl, err := cluster.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := crossbar.New(crossbar.Config{Cluster: cl}, hub.New(), log)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(relay, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		relay.Close()
		cl.Close()
	})
	return "nats://" + cl.ClusterAddr().String()
}

// clusterOf is the run's view of its cluster; nil without one.
func clusterOf(t *testing.T, r *vwRun) *crossbar.ClusterStatus {
	t.Helper()
	return relayStats(t, r.proc).Cluster
}

// unclustered checks that r runs and, if v (the value of setting) is "",
// that /stats shows no cluster; it reports whether v was "".
func unclustered(t *testing.T, r *vwRun, setting, v string) bool {
	t.Helper()
	running(t, r)
	if v != "" {
		return false
	}
	if cs := clusterOf(t, r); cs != nil {
		t.Fatalf("no %s, but /stats shows a cluster: %+v", setting, cs)
	}
	return true
}

// joins checks that r sees the relay named peer up, and no other.
func joins(t *testing.T, r *vwRun, peer string) {
	t.Helper()
	running(t, r)
	var seen []crossbar.PeerStatus
	testutil.Eventually(t, 15*time.Second, func() bool {
		cs := clusterOf(t, r)
		if cs == nil {
			return false
		}
		seen = cs.Peers
		return len(seen) == 1 && seen[0].Node == peer && seen[0].Up
	}, "the relay does not see %s (alone) up: %+v", peer, seen)
}

// joinsNone checks that r runs in a cluster and sees no peer for a while.
func joinsNone(t *testing.T, r *vwRun) {
	t.Helper()
	running(t, r)
	if testutil.WaitFor(2*time.Second, func() bool {
		cs := clusterOf(t, r)
		return cs == nil || len(cs.Peers) > 0
	}) {
		t.Fatalf("want a cluster of one: %+v", clusterOf(t, r))
	}
}

// nodeNamed checks the node name /stats shows; the default is the host's
// name.
func nodeNamed(t *testing.T, r *vwRun, v string) {
	t.Helper()
	running(t, r)
	if v == "" {
		v, _ = os.Hostname()
	}
	if cs := clusterOf(t, r); cs == nil || cs.Node != v {
		t.Fatalf("/stats shows cluster %+v, want node %q", cs, v)
	}
}

// clusterListens checks where the cluster takes routes: nowhere (no
// cluster at all) for "", else at v, as the log says.
func clusterListens(t *testing.T, r *vwRun, v string) {
	t.Helper()
	if unclustered(t, r, "VW_RELAY_CLUSTER_LISTEN", v) {
		return
	}
	if !strings.Contains(r.logText(), `msg="cluster listening" addr="`+v+`"`) {
		t.Fatalf("the log does not say the cluster listens at %s:\n%s", v, r.logText())
	}
	c, err := net.DialTimeout("tcp", v, time.Second)
	if err != nil {
		t.Fatalf("the cluster port %s: %v", v, err)
	}
	c.Close()
}

// routesTo returns a check that a run joins the seed its route names.
func routesTo(names map[string]string) func(t *testing.T, r *vwRun, v string) {
	return func(t *testing.T, r *vwRun, v string) {
		t.Helper()
		if v == "" {
			joinsNone(t, r)
			return
		}
		joins(t, r, names[v])
	}
}

// clusterSecretTrial is a row's trial for a secret setting: two seeds, one
// per secret, both routed to; the run joins the one whose secret it has,
// and refuses to start without any.
func clusterSecretTrial(asFile bool) func(t *testing.T) trial {
	return func(t *testing.T) trial {
		a := seedRelay(t, "seed-a", cluster.Config{Secret: []byte(clusterSecretA)})
		b := seedRelay(t, "seed-b", cluster.Config{Secret: []byte(clusterSecretB)})
		envVal, flagVal := clusterSecretA, clusterSecretB
		if asFile {
			envVal, flagVal = secretFile(t, clusterSecretA), secretFile(t, clusterSecretB)
		}
		peer := map[string]string{envVal: "seed-a", flagVal: "seed-b"}
		return trial{env: []string{"VW_RELAY_CLUSTER_LISTEN=127.0.0.1:0", "VW_RELAY_CLUSTER_ROUTES=" + a + "," + b},
			envVal: envVal, flagVal: flagVal, check: func(t *testing.T, r *vwRun, v string) {
				if v == "" {
					refused(t, r, "clustering needs VW_RELAY_CLUSTER_SECRET_FILE")
					return
				}
				joins(t, r, peer[v])
			}}
	}
}

// clusterTLS is what the TLS rows share: a seed whose routes need a
// certificate from ca, and two peer certificates from it.
type clusterTLS struct {
	*certPairs
	other *testutil.CA
	seed  string
}

func newClusterTLS(t *testing.T) *clusterTLS {
	dir := t.TempDir()
	p := &clusterTLS{certPairs: newCertPairs(t, "cluster-ca", true), other: testutil.NewCA(t, dir, "other-ca")}
	cert, key := p.ca.Peer(t, dir)
	p.seed = seedRelay(t, "tls-seed", cluster.Config{Secret: []byte(clusterSecretA), TLSCert: cert, TLSKey: key, TLSCA: p.ca.PEMFile})
	return p
}

// env is what a run needs to join the seed, less the setting under test.
func (p *clusterTLS) env(except string) []string {
	all := map[string]string{
		"VW_RELAY_CLUSTER_LISTEN":   "127.0.0.1:0",
		"VW_RELAY_CLUSTER_ROUTES":   p.seed,
		"VW_RELAY_CLUSTER_SECRET":   clusterSecretA,
		"VW_RELAY_CLUSTER_TLS_CERT": p.certA,
		"VW_RELAY_CLUSTER_TLS_KEY":  p.keyA,
		"VW_RELAY_CLUSTER_TLS_CA":   p.ca.PEMFile,
	}
	var out []string
	for k, v := range all {
		if k != except {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// joinsWithA checks that the run given A's pair joins the TLS seed (see
// checkPair).
func (p *clusterTLS) joinsWithA(t *testing.T, r *vwRun, v string) {
	t.Helper()
	p.checkPair(t, r, v, "cluster: TLS needs both a certificate and its key", "cluster TLS: tls: private key does not match public key", func() {
		joins(t, r, "tls-seed")
	})
}

// trustsCA checks the CA setting: with the seed's CA the run joins it;
// with another, or none (the system's roots), it does not.
func (p *clusterTLS) trustsCA(t *testing.T, r *vwRun, v string) {
	t.Helper()
	if v == p.ca.PEMFile {
		joins(t, r, "tls-seed")
		return
	}
	joinsNone(t, r)
}

// natsServers starts two plain NATS servers on loopback for the
// VW_RELAY_NATS row and returns their URLs and a count of each one's
// clients.
func natsServers(t *testing.T) (a, b string, clients func(url string) int) {
	t.Helper()
	srvs := map[string]*server.Server{}
	for range 2 {
		s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("a NATS server did not start")
		}
		t.Cleanup(s.Shutdown)
		srvs[s.ClientURL()] = s
	}
	var urls []string
	for u := range srvs {
		urls = append(urls, u)
	}
	return urls[0], urls[1], func(u string) int { return srvs[u].NumClients() }
}

// usesNATS returns a check that the run is connected to the NATS server
// at v (no cluster at all for "").
func usesNATS(clients func(string) int) func(t *testing.T, r *vwRun, v string) {
	return func(t *testing.T, r *vwRun, v string) {
		t.Helper()
		if unclustered(t, r, "VW_RELAY_NATS", v) {
			return
		}
		testutil.Eventually(t, 10*time.Second, func() bool { return clients(v) == 1 }, "the relay is not connected to %s", v)
	}
}

// readsCreds checks that the run presents the credentials file v: one that
// does not exist stops it, naming the file; none connects without.
func readsCreds(t *testing.T, r *vwRun, v string) {
	t.Helper()
	if v == "" {
		running(t, r)
		return
	}
	refused(t, r, v)
}
