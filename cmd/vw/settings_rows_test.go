package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/cluster"
	"github.com/vwlab/vw/internal/testutil"
)

// setting is one VW_ variable of a command and its flag. A new setting is
// one row here; TestSettingsDocumented fails until it has one.
type setting struct {
	cmd, env, flag string
	// try makes what one run of the check needs (files, servers, ports),
	// fresh for each run.
	try func(t *testing.T) trial
}

// trial is one run's values and the check that vw runs with one of them.
type trial struct {
	env []string // the rest of the environment the check needs
	// def is the default; envVal and flagVal two other values, different
	// from each other, for the variable and for the flag.
	def, envVal, flagVal string
	// noDefault says why the default cannot be run here (TestDefaultPorts
	// and TestSettingsDocumented cover it).
	noDefault string
	// check fails the test unless r runs with the value v.
	check func(t *testing.T, r *vwRun, v string)
}

// fixed is a trial whose values need nothing made.
func fixed(tr trial) func(*testing.T) trial { return func(*testing.T) trial { return tr } }

const (
	secretA = "0123456789abcdef0123456789abcdef-A"
	secretB = "0123456789abcdef0123456789abcdef-B"
)

var settings = []setting{
	// vw stream
	{"stream", "VW_HOST", "--host", fixed(trial{def: "127.0.0.1", envVal: "127.0.0.2", flagVal: "127.0.0.3", check: listensOnHost})},
	{"stream", "VW_PORT", "--port", func(t *testing.T) trial {
		return trial{envVal: strconv.Itoa(freePort(t)), flagVal: strconv.Itoa(freePort(t)), check: listensOnPort,
			noDefault: "8888 may be taken on a shared machine"}
	}},
	{"stream", "VW_LOGLEVEL", "--loglevel", func(t *testing.T) trial {
		// VW_STATE=off: a warning at start. A port of its own: a level
		// above info hides the line that says which port.
		return trial{env: []string{"VW_STATE=off", "VW_PORT=" + strconv.Itoa(freePort(t))},
			def: "info", envVal: "warn", flagVal: "error", check: logsAt}
	}},
	{"stream", "VW_API", "--api", fixed(trial{envVal: "ws://127.0.0.1:1/bi/env/api", flagVal: "ws://127.0.0.1:1/bi/flag/api", check: apiRuleTo})},
	{"stream", "VW_API_RELAY_TOKEN", "--api-relay-token", func(t *testing.T) trial {
		relay := &handshakes{}
		srv := startHandshakes(t, relay)
		return trial{env: []string{"VW_API=" + srv + "/bi/lab1/api"}, envVal: "tok-env", flagVal: "tok-flag",
			check: func(t *testing.T, r *vwRun, v string) { relay.sawToken(t, v) }}
	}},
	{"stream", "VW_API_TOKEN", "--api-token", fixed(trial{envVal: "tok-env", flagVal: "tok-flag", check: apiNeedsToken})},
	{"stream", "VW_RECORDINGS", "--recordings", func(t *testing.T) trial {
		return trial{def: "./recordings", envVal: t.TempDir(), flagVal: t.TempDir(), check: recordsIn}
	}},
	{"stream", "VW_STATE", "--state", func(t *testing.T) trial {
		home := t.TempDir()
		return trial{env: []string{"HOME=" + home}, envVal: filepath.Join(t.TempDir(), "env.json"), flagVal: filepath.Join(t.TempDir(), "flag.json"),
			check: func(t *testing.T, r *vwRun, v string) {
				if v == "" {
					v = filepath.Join(home, ".local", "state", "vw", "rules.json")
				}
				if _, err := os.Stat(v); err != nil {
					t.Fatalf("no state file: %v", err)
				}
			}}
	}},
	{"stream", "VW_LOG_FORMAT", "--log-format", fixed(trial{def: "text", envVal: "json", flagVal: "text", check: logsAs})},
	{"stream", "VW_ALLOWED_HOSTS", "--allowed-hosts", fixed(trial{envVal: "env.example", flagVal: "flag.example", check: allowsHost})},
	{"stream", "VW_MAX_FEEDS_PER_STREAM", "--max-feeds-per-stream", fixed(trial{def: "16", envVal: "2", flagVal: "3", check: maxFeeds})},
	{"stream", "VW_MAX_DELAY", "--max-delay", fixed(trial{def: "1s", envVal: "500ms", flagVal: "2s", check: maxDelayIs})},
	{"stream", "VW_MAX_RULES", "--max-rules", fixed(trial{def: "256", envVal: "2", flagVal: "3", check: maxRules})},
	{"stream", "VW_CA_FILE", "--ca-file", func(t *testing.T) trial {
		ca := testutil.NewCA(t, t.TempDir(), "lab-ca")
		return trial{envVal: filepath.Join(t.TempDir(), "missing.pem"), flagVal: ca.PEMFile, check: func(t *testing.T, r *vwRun, v string) {
			if _, err := os.Stat(v); v != "" && err != nil {
				refused(t, r, "VW_CA_FILE: ")
				return
			}
			running(t, r)
		}}
	}},

	// vw relay
	{"relay", "VW_RELAY_LISTEN", "--listen", func(t *testing.T) trial {
		return trial{envVal: "127.0.0.1:" + strconv.Itoa(freePort(t)), flagVal: "127.0.0.1:" + strconv.Itoa(freePort(t)),
			check: func(t *testing.T, r *vwRun, v string) {
				running(t, r)
				if r.addr != v || testutil.Do(t, testutil.Req{URL: r.baseURL + "/healthcheck"}).Status != 200 {
					t.Fatalf("listens at %q, want %s\n%s", r.addr, v, r.logText())
				}
			}, noDefault: ":8080 may be taken on a shared machine"}
	}},
	{"relay", "VW_LOGLEVEL", "--loglevel", func(t *testing.T) trial {
		return trial{env: []string{"VW_RELAY_LISTEN=127.0.0.1:" + strconv.Itoa(freePort(t))},
			def: "info", envVal: "warn", flagVal: "error", check: logsAt}
	}},
	{"relay", "VW_RELAY_SECRET_FILE", "--secret-file", func(t *testing.T) trial {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		for f, s := range map[string]string{a: secretA + "\n", b: secretB} {
			if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return trial{envVal: a, flagVal: b, check: func(t *testing.T, r *vwRun, v string) {
			secret, err := auth.Secret("", v)
			if v != "" && err != nil {
				t.Fatal(err)
			}
			signedWith(t, r, secret, "vw-relay")
		}}
	}},
	{"relay", "VW_RELAY_SECRET", "--secret", fixed(trial{envVal: secretA, flagVal: secretB, check: func(t *testing.T, r *vwRun, v string) {
		var secret []byte
		if v != "" {
			secret = []byte(v)
		}
		signedWith(t, r, secret, "vw-relay")
	}})},
	{"relay", "VW_RELAY_AUDIENCE", "--audience", fixed(trial{env: []string{"VW_RELAY_SECRET=" + secretA},
		def: "vw-relay", envVal: "aud-env", flagVal: "aud-flag", check: func(t *testing.T, r *vwRun, v string) {
			signedWith(t, r, []byte(secretA), v)
		}})},
	{"relay", "VW_RELAY_PUBLIC", "--public", fixed(trial{env: []string{"VW_RELAY_SECRET=" + secretA},
		envVal: "pubenv/", flagVal: "pubflag/", check: publicPrefix})},
	{"relay", "VW_RELAY_TLS_CERT", "--tls-cert", func(t *testing.T) trial {
		p := newTLSPair(t)
		return trial{env: []string{"VW_RELAY_TLS_KEY=" + p.keyA}, envVal: p.certA, flagVal: p.certB, check: p.servesA}
	}},
	{"relay", "VW_RELAY_TLS_KEY", "--tls-key", func(t *testing.T) trial {
		p := newTLSPair(t)
		return trial{env: []string{"VW_RELAY_TLS_CERT=" + p.certA}, envVal: p.keyA, flagVal: p.keyB, check: p.servesA}
	}},
	// A viewer that never reads is dropped once its queue (messages, then
	// bytes) overflows; 40 MB sent overflows 2 messages or 8 MiB, not 256
	// or 1000 messages or 1 GiB.
	{"relay", "VW_RELAY_QUEUE", "--queue", fixed(trial{env: []string{"VW_RELAY_QUEUE_BYTES=1073741824"},
		def: "256", envVal: "2", flagVal: "1000", check: dropsStalledViewer(20, "messages")})},
	{"relay", "VW_RELAY_QUEUE_BYTES", "--queue-bytes", fixed(trial{env: []string{"VW_RELAY_QUEUE=100000"},
		def: "8388608", envVal: "1048576", flagVal: "1073741824", check: dropsStalledViewer(20<<20, "bytes")})},
	{"relay", "VW_RELAY_MAX_MESSAGE", "--max-message", fixed(trial{def: "1048576", envVal: "1000", flagVal: "2000", check: maxMessage})},
	{"relay", "VW_RELAY_MAX_VIEWERS", "--max-viewers", fixed(trial{def: "1000", envVal: "2", flagVal: "3", check: capped("/out/v", false, http.StatusServiceUnavailable),
		noDefault: "1000 viewers from one address pass the 100 connections per address"})},
	// A GOP of about 24 KB is cached under 64 KiB or the default, not
	// under 16 KiB.
	{"relay", "VW_RELAY_CACHE_BYTES", "--cache-bytes", fixed(trial{def: "4194304", envVal: "16384", flagVal: "65536", check: cachesGOP})},
	{"relay", "VW_RELAY_MAX_DELAY", "--max-delay", fixed(trial{def: "1s", envVal: "500ms", flagVal: "2s", check: relayMaxDelayIs})},
	{"relay", "VW_RELAY_MAX_CONNS_PER_ADDR", "--max-conns-per-addr", fixed(trial{def: "100", envVal: "2", flagVal: "3", check: capped("/out/c", true, http.StatusTooManyRequests)})},
	{"relay", "VW_RELAY_MAX_CONNS", "--max-conns", fixed(trial{def: "20000", envVal: "2", flagVal: "3", noDefault: "20,000 connections are too many for a test",
		check: capped("/out/c", true, http.StatusServiceUnavailable)})},
	{"relay", "VW_RELAY_MAX_TOPICS", "--max-topics", fixed(trial{def: "10000", envVal: "2", flagVal: "3", noDefault: "10,000 topics are too many for a test",
		check: capped("/out/t", true, http.StatusServiceUnavailable)})},
	{"relay", "VW_RELAY_MAX_CONNS_PER_TOKEN", "--max-conns-per-token", fixed(trial{env: []string{"VW_RELAY_SECRET=" + secretA},
		def: "1000", envVal: "2", flagVal: "3", noDefault: "1,000 connections from one address pass the 100 per address", check: maxConnsPerToken})},
	{"relay", "VW_RELAY_TRUSTED_PROXIES", "--trusted-proxies", fixed(trial{envVal: "10.9.9.9", flagVal: "127.0.0.1", check: trustsProxy})},
	{"relay", "VW_LOG_FORMAT", "--log-format", fixed(trial{def: "text", envVal: "json", flagVal: "text", check: logsAs})},
	{"relay", "VW_RELAY_METRICS_TOPICS", "--metrics-topics", fixed(trial{def: "200", envVal: "1", flagVal: "2", check: metricsTopics,
		noDefault: "201 publishers from one address pass the 100 connections per address"})},
	{"relay", "VW_RELAY_STATE", "--state", func(t *testing.T) trial {
		home := t.TempDir()
		return trial{env: []string{"HOME=" + home, "VW_RELAY_SECRET=" + secretA},
			envVal: filepath.Join(t.TempDir(), "env.json"), flagVal: filepath.Join(t.TempDir(), "flag.json"),
			check: func(t *testing.T, r *vwRun, v string) {
				if v == "" {
					v = filepath.Join(home, ".local", "state", "vw", "relay.json")
				}
				deniesInto(t, r, v)
			}}
	}},
	// A cluster of relays (the other relays are run in the test's process).
	{"relay", "VW_RELAY_NODE", "--node", fixed(trial{env: []string{"VW_RELAY_CLUSTER_LISTEN=127.0.0.1:0", "VW_RELAY_CLUSTER_SECRET=" + clusterSecretA},
		envVal: "node-env", flagVal: "node-flag", check: nodeNamed})},
	{"relay", "VW_RELAY_CLUSTER_LISTEN", "--cluster-listen", func(t *testing.T) trial {
		return trial{env: []string{"VW_RELAY_CLUSTER_SECRET=" + clusterSecretA},
			envVal: "127.0.0.1:" + strconv.Itoa(freePort(t)), flagVal: "127.0.0.1:" + strconv.Itoa(freePort(t)), check: clusterListens}
	}},
	{"relay", "VW_RELAY_CLUSTER_ROUTES", "--cluster-routes", func(t *testing.T) trial {
		a := seedRelay(t, "seed-env", cluster.Config{Secret: []byte(clusterSecretA)})
		b := seedRelay(t, "seed-flag", cluster.Config{Secret: []byte(clusterSecretA)})
		return trial{env: []string{"VW_RELAY_CLUSTER_LISTEN=127.0.0.1:0", "VW_RELAY_CLUSTER_SECRET=" + clusterSecretA},
			envVal: a, flagVal: b, check: routesTo(map[string]string{a: "seed-env", b: "seed-flag"})}
	}},
	{"relay", "VW_RELAY_CLUSTER_SECRET_FILE", "--cluster-secret-file", clusterSecretTrial(true)},
	{"relay", "VW_RELAY_CLUSTER_SECRET", "--cluster-secret", clusterSecretTrial(false)},
	{"relay", "VW_RELAY_CLUSTER_TLS_CERT", "--cluster-tls-cert", func(t *testing.T) trial {
		p := newClusterTLS(t)
		return trial{env: p.env("VW_RELAY_CLUSTER_TLS_CERT"), envVal: p.certA, flagVal: p.certB, check: p.joinsWithA}
	}},
	{"relay", "VW_RELAY_CLUSTER_TLS_KEY", "--cluster-tls-key", func(t *testing.T) trial {
		p := newClusterTLS(t)
		return trial{env: p.env("VW_RELAY_CLUSTER_TLS_KEY"), envVal: p.keyA, flagVal: p.keyB, check: p.joinsWithA}
	}},
	{"relay", "VW_RELAY_CLUSTER_TLS_CA", "--cluster-tls-ca", func(t *testing.T) trial {
		p := newClusterTLS(t)
		return trial{env: p.env("VW_RELAY_CLUSTER_TLS_CA"), envVal: p.ca.PEMFile, flagVal: p.other.PEMFile, check: p.trustsCA}
	}},
	{"relay", "VW_RELAY_NATS", "--nats", func(t *testing.T) trial {
		a, b, clients := natsServers(t)
		return trial{envVal: a, flagVal: b, check: usesNATS(clients)}
	}},
	{"relay", "VW_RELAY_NATS_CREDS", "--nats-creds", func(t *testing.T) trial {
		a, _, _ := natsServers(t)
		return trial{env: []string{"VW_RELAY_NATS=" + a},
			envVal: filepath.Join(t.TempDir(), "env.creds"), flagVal: filepath.Join(t.TempDir(), "flag.creds"), check: readsCreds}
	}},
}
