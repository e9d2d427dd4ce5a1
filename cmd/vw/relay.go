package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/vwlab/vw/auth"
	"github.com/vwlab/vw/cluster"
	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/hub"
)

// relayConfig is vw relay's configuration: VW_RELAY_<NAME> or --<name>.
type relayConfig struct {
	Listen          string   `envconfig:"RELAY_LISTEN" flag:"listen" default:":8080" desc:"address to listen on"`
	LogLevel        string   `envconfig:"LOGLEVEL" flag:"loglevel" default:"info" desc:"log level: trace, debug, info, warn, error, fatal, panic"`
	LogFormat       string   `envconfig:"LOG_FORMAT" flag:"log-format" default:"text" desc:"log format: text, or json (one object a line)"`
	SecretFile      string   `envconfig:"RELAY_SECRET_FILE" flag:"secret-file" desc:"file holding the token signing secret (at least 32 bytes); with no secret the relay is open"`
	Secret          string   `envconfig:"RELAY_SECRET" flag:"secret" desc:"the token signing secret itself (prefer --secret-file: arguments and environments leak)"`
	Audience        string   `envconfig:"RELAY_AUDIENCE" flag:"audience" default:"vw-relay" desc:"audience required in tokens, so one relay's tokens do not open another"`
	Public          []string `envconfig:"RELAY_PUBLIC" flag:"public" desc:"route prefixes whose /out/ anyone may watch without a token, comma-separated (e.g. demo/)"`
	Queue           int      `envconfig:"RELAY_QUEUE" flag:"queue" default:"256" desc:"messages a viewer may fall behind before it is disconnected"`
	QueueBytes      int      `envconfig:"RELAY_QUEUE_BYTES" flag:"queue-bytes" default:"8388608" desc:"bytes a viewer may fall behind before it is disconnected"`
	MaxMessage      int      `envconfig:"RELAY_MAX_MESSAGE" flag:"max-message" default:"1048576" desc:"largest message a client may send, in bytes"`
	MaxViewers      int      `envconfig:"RELAY_MAX_VIEWERS" flag:"max-viewers" default:"1000" desc:"clients per topic; more are refused with 503"`
	MaxConnsPerAddr int      `envconfig:"RELAY_MAX_CONNS_PER_ADDR" flag:"max-conns-per-addr" default:"100" desc:"websocket connections without a token per client IP; more are refused with 429"`
	MaxConnsPerTok  int      `envconfig:"RELAY_MAX_CONNS_PER_TOKEN" flag:"max-conns-per-token" default:"1000" desc:"websocket connections per token; more are refused with 429"`
	MaxConns        int      `envconfig:"RELAY_MAX_CONNS" flag:"max-conns" default:"20000" desc:"websocket connections in all; more are refused with 503"`
	MaxTopics       int      `envconfig:"RELAY_MAX_TOPICS" flag:"max-topics" default:"10000" desc:"topics in all; a connection that would open one more is refused with 503"`
	TrustedProxies  []string `envconfig:"RELAY_TRUSTED_PROXIES" flag:"trusted-proxies" desc:"reverse proxies in front of the relay, comma-separated addresses or CIDRs: for their requests the client address comes from X-Forwarded-For"`
	State           string   `envconfig:"RELAY_STATE" flag:"state" desc:"file that keeps the deny list across restarts (default $STATE_DIRECTORY/relay.json, else ~/.local/state/vw/relay.json); off keeps none"`
	MetricsTopics   int      `envconfig:"RELAY_METRICS_TOPICS" flag:"metrics-topics" default:"200" desc:"streams /metrics reports one by one (the oldest with a publisher); the rest are summed under topic=\"other\""`
	CacheBytes      int      `envconfig:"RELAY_CACHE_BYTES" flag:"cache-bytes" default:"4194304" desc:"bytes of each stream's keyframe cache, which a viewer joining gets first so that it shows a picture at once (64 times this for all streams together); 0 keeps only the PAT/PMT"`
	TLSCert         string   `envconfig:"RELAY_TLS_CERT" flag:"tls-cert" desc:"PEM certificate (chain) file; with --tls-key the relay serves HTTPS and WSS"`
	TLSKey          string   `envconfig:"RELAY_TLS_KEY" flag:"tls-key" desc:"PEM private key file for --tls-cert"`
	ClusterSettings

	// The delay bound of every viewer on a slow link (crossbar skips).
	MaxDelay time.Duration `envconfig:"RELAY_MAX_DELAY" flag:"max-delay" default:"1s" desc:"how far behind live a viewer may fall on a link slower than its stream: the relay skips its video up to keyframes, keeping its audio, to keep it well within this; 0 never skips"`
}

// ClusterSettings is a relay's place in a cluster of relays (package
// cluster). Exported so that envconfig reads the fields it embeds.
type ClusterSettings struct {
	Node              string   `envconfig:"RELAY_NODE" flag:"node" desc:"this relay's name in a cluster (default: the host name)"`
	ClusterListen     string   `envconfig:"RELAY_CLUSTER_LISTEN" flag:"cluster-listen" desc:"address other relays' routes connect to, e.g. :6222; with --cluster-routes, default :6222"`
	ClusterRoutes     []string `envconfig:"RELAY_CLUSTER_ROUTES" flag:"cluster-routes" desc:"other relays to join, comma-separated nats://host:port (one is enough)"`
	ClusterSecretFile string   `envconfig:"RELAY_CLUSTER_SECRET_FILE" flag:"cluster-secret-file" desc:"file holding the secret every relay of the cluster shares (at least 32 bytes); required to cluster"`
	ClusterSecret     string   `envconfig:"RELAY_CLUSTER_SECRET" flag:"cluster-secret" desc:"the cluster secret itself (prefer --cluster-secret-file)"`
	ClusterTLSCert    string   `envconfig:"RELAY_CLUSTER_TLS_CERT" flag:"cluster-tls-cert" desc:"PEM certificate for routes between relays (server and client)"`
	ClusterTLSKey     string   `envconfig:"RELAY_CLUSTER_TLS_KEY" flag:"cluster-tls-key" desc:"PEM private key for --cluster-tls-cert"`
	ClusterTLSCA      string   `envconfig:"RELAY_CLUSTER_TLS_CA" flag:"cluster-tls-ca" desc:"PEM CA that every relay's route certificate must chain to"`
	NATS              string   `envconfig:"RELAY_NATS" flag:"nats" desc:"connect to this NATS cluster (comma-separated nats:// URLs) instead of embedding a server"`
	NATSCreds         string   `envconfig:"RELAY_NATS_CREDS" flag:"nats-creds" desc:"credentials file for --nats"`
}

func newRelayCmd(stderr io.Writer) *cobra.Command {
	return newServeCmd("relay", "Run in the cloud: relay streams from /in/{x} to viewers of /out/{x}, and bidirectional routes", runRelay, stderr)
}

// runRelay builds the relay from its settings and serves until ctx ends. It
// is long on purpose: the wiring reads top to bottom in the order things are
// built, and the deferred closes below undo it in reverse; split up, that
// order would be scattered over several functions.
func runRelay(ctx context.Context, cfg relayConfig, stderr io.Writer) error {
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	secret, err := auth.Secret(cfg.Secret, cfg.SecretFile)
	if err != nil {
		return err
	}
	proxies, err := crossbar.ParseProxies(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("VW_RELAY_TRUSTED_PROXIES: %w", err)
	}
	access, err := auth.New(auth.Config{
		Secret:    secret,
		Audience:  cfg.Audience,
		Public:    cfg.Public,
		StatePath: relayStatePath(cfg.State, secret != nil, log),
	}, log.WithField("component", "auth"))
	if err != nil {
		return err
	}
	if access.Open() {
		log.Warn("no VW_RELAY_SECRET_FILE or VW_RELAY_SECRET: the relay is open, anyone can publish and watch; fine for a demo or a private network only")
	}
	cl, err := newCluster(cfg.ClusterSettings, log)
	if err != nil {
		return err
	}
	var member crossbar.Cluster
	if cl != nil {
		member = cl
	}
	relay, err := crossbar.New(crossbar.Config{
		Cluster:          member,
		Auth:             access,
		Queue:            cfg.Queue,
		QueueBytes:       int64(cfg.QueueBytes),
		MaxMessage:       int64(cfg.MaxMessage),
		MaxViewers:       cfg.MaxViewers,
		MaxConnsPerAddr:  cfg.MaxConnsPerAddr,
		MaxConnsPerToken: cfg.MaxConnsPerTok,
		MaxConns:         cfg.MaxConns,
		MaxTopics:        cfg.MaxTopics,
		TrustedProxies:   proxies,
		MetricsTopics:    cfg.MetricsTopics,
		CacheBytes:       cacheBytes(cfg.CacheBytes),
		MaxDelay:         maxDelay(cfg.MaxDelay),
	}, hub.New(), log.WithField("component", "relay"))
	if err != nil {
		return err
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		relay.Close()
		return errors.New("TLS needs both VW_RELAY_TLS_CERT and VW_RELAY_TLS_KEY")
	}
	if cl != nil {
		if err := cl.Start(relay, access); err != nil {
			relay.Close()
			return err
		}
		// After the relay: its clients' last words may still go out.
		defer cl.Close()
	}
	hs := relay.NewHTTPServer(cfg.Listen)
	hs.ErrorLog = httpErrorLog(log)
	if cfg.TLSCert != "" {
		// Load now, so that a bad pair is an error at start, not at the
		// first handshake.
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			relay.Close()
			return fmt.Errorf("TLS: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		relay.Close()
		return err
	}
	// Serve writes to hs.TLSConfig (it adds HTTP/2): decide before it runs.
	useTLS := hs.TLSConfig != nil
	serveErr := make(chan error, 1)
	go func() {
		if useTLS {
			serveErr <- hs.ServeTLS(ln, "", "")
		} else {
			serveErr <- hs.Serve(ln)
		}
	}()
	log.WithFields(logrus.Fields{"addr": ln.Addr().String(), "tls": useTLS, "max_delay": cfg.MaxDelay, "version": version}).Info("vw relay listening")

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	log.Info("vw relay stopping")
	// Websockets are hijacked, so Shutdown does not wait for them: close
	// them first, each with a close frame.
	relay.Close()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if serr := hs.Shutdown(sctx); serr != nil {
		_ = hs.Close()
	}
	log.Info("vw relay stopped")
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}

// relayStatePath is where the deny list is kept: VW_RELAY_STATE, its
// default, or nowhere when it is off or the relay runs open (no token to
// deny).
func relayStatePath(setting string, withAuth bool, log *logrus.Entry) string {
	switch {
	case !withAuth:
		return ""
	case setting == "off":
		log.Warn("VW_RELAY_STATE=off: revoked tokens will work again after a restart")
		return ""
	case setting == "":
		return auth.DefaultStatePath()
	default:
		return setting
	}
}

// cacheBytes maps VW_RELAY_CACHE_BYTES to crossbar.Config.CacheBytes, where
// zero means the default and a negative value keeps only the PAT/PMT.
func cacheBytes(n int) int64 {
	if n <= 0 {
		return -1
	}
	return int64(n)
}

// newCluster returns the relay's cluster membership, or nil when no cluster
// is configured.
func newCluster(cfg ClusterSettings, log *logrus.Entry) (*cluster.Cluster, error) {
	cc := cluster.Config{
		Node:      cfg.Node,
		Listen:    cfg.ClusterListen,
		Routes:    cfg.ClusterRoutes,
		TLSCert:   cfg.ClusterTLSCert,
		TLSKey:    cfg.ClusterTLSKey,
		TLSCA:     cfg.ClusterTLSCA,
		NATS:      cfg.NATS,
		NATSCreds: cfg.NATSCreds,
	}
	if !cc.Enabled() {
		return nil, nil
	}
	switch {
	case cfg.ClusterSecret != "" && cfg.ClusterSecretFile != "":
		return nil, errors.New("set VW_RELAY_CLUSTER_SECRET or VW_RELAY_CLUSTER_SECRET_FILE, not both")
	case cfg.ClusterSecretFile != "":
		s, err := auth.LoadSecret(cfg.ClusterSecretFile)
		if err != nil {
			return nil, fmt.Errorf("cluster secret: %w", err)
		}
		cc.Secret = s
	case cfg.ClusterSecret != "":
		cc.Secret = []byte(cfg.ClusterSecret)
	case cfg.NATS == "":
		return nil, errors.New("clustering needs VW_RELAY_CLUSTER_SECRET_FILE (or VW_RELAY_CLUSTER_SECRET), the same on every relay: a route sees every stream")
	}
	return cluster.New(cc, log.WithField("component", "cluster"))
}

// maxDelay maps VW_RELAY_MAX_DELAY to crossbar's Config.MaxDelay, whose
// zero is its default: 0 here never skips.
func maxDelay(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
