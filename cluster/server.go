package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"
)

// clusterName is the NATS cluster name every relay uses.
const clusterName = "vw"

// routeUser is the user name routes authenticate as.
const routeUser = "vw-relay"

// startTimeout bounds how long the embedded server may take to start.
const startTimeout = 10 * time.Second

// routePassword is what a route presents: derived from the secret, so that
// the secret itself never crosses the network (without TLS the password
// does: use TLS between relays that talk over networks you do not trust).
func routePassword(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("vw relay cluster route"))
	return hex.EncodeToString(m.Sum(nil))
}

// serverOptions are the embedded server's: no client port (the relay
// connects in-process), no signal handling, no system account, routes on
// Listen authenticated by the secret, messages up to maxPayload, and no
// producer stall: a relay slow to read a route must never slow the
// publisher's relay (its messages to that route are dropped, the gap is
// seen at the receiver, and a route that falls MaxPending behind is cut and
// reconnects).
func (c *Cluster) serverOptions() (*server.Options, error) {
	host, portStr, err := net.SplitHostPort(c.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cluster listen %q: %w", c.cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("cluster listen %q: bad port", c.cfg.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	pass := routePassword(c.cfg.Secret)
	opts := &server.Options{
		ServerName: c.cfg.Node,
		// The relay connects in-process, so the client port is of no use;
		// but DontListen never starts routing (in 2.15 the route accept loop
		// waits for the client accept loop, which DontListen skips), so
		// clients are taken on a random loopback port, with credentials
		// made for this run and known to this process only.
		Host:                "127.0.0.1",
		Port:                server.RANDOM_PORT,
		Username:            c.clientUser,
		Password:            c.clientPass,
		MaxConn:             4,
		NoSigs:              true,
		NoSystemAccount:     true,
		MaxPayload:          maxPayload,
		NoFastProducerStall: true,
		Cluster: server.ClusterOpts{
			Name:     clusterName,
			Host:     host,
			Port:     port,
			Username: routeUser,
			Password: pass,
			// Video does not compress; on a LAN compression is only CPU.
			Compression:  server.CompressionOpts{Mode: server.CompressionOff},
			PingInterval: 2 * time.Second,
			MaxPingsOut:  3,
		},
	}
	for _, r := range c.cfg.Routes {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("cluster route %q: %w", r, err)
		}
		u.User = url.UserPassword(routeUser, pass)
		opts.Routes = append(opts.Routes, u)
	}
	if c.cfg.TLSCert != "" {
		tc, err := c.tlsConfig(true)
		if err != nil {
			return nil, err
		}
		opts.Cluster.TLSConfig = tc
		opts.Cluster.TLSTimeout = 5
	}
	return opts, nil
}

// tlsConfig loads the cluster's certificate and CA. As a server it
// requires a client certificate from the same CA: both ends of a route are
// relays.
func (c *Cluster) tlsConfig(forServer bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.cfg.TLSCert, c.cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("cluster TLS: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if c.cfg.TLSCA != "" {
		pem, err := os.ReadFile(c.cfg.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("cluster TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster TLS CA %s: no PEM certificate", c.cfg.TLSCA)
		}
		tc.RootCAs = pool
		if forServer {
			tc.ClientCAs = pool
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return tc, nil
}

// startServer starts the embedded server and waits until it takes routes.
func (c *Cluster) startServer() (*server.Server, error) {
	opts, err := c.serverOptions()
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	nl := &natsLog{log: c.log.WithField("component", "nats"), fatal: make(chan string, 1)}
	srv.SetLogger(nl, true, false)
	srv.Start()
	deadline := time.Now().Add(startTimeout)
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-nl.fatal:
			srv.Shutdown()
			return nil, fmt.Errorf("cluster: %s", msg)
		default:
		}
		if time.Now().After(deadline) {
			srv.Shutdown()
			return nil, errors.New("cluster: the embedded server did not start")
		}
	}
	addr := srv.ClusterAddr()
	c.log.WithFields(logrus.Fields{"addr": addr.String(), "routes": strings.Join(c.cfg.Routes, ","), "tls": opts.Cluster.TLSConfig != nil}).Info("cluster listening")
	return srv, nil
}

// ClusterAddr is where the embedded server takes routes (nil without one).
func (c *Cluster) ClusterAddr() net.Addr {
	if c.srv == nil {
		return nil
	}
	return c.srv.ClusterAddr()
}

func (c *Cluster) shutdownServer() {
	if c.srv != nil {
		c.srv.Shutdown()
		c.srv.WaitForShutdown()
	}
}

// connect opens the relay's one connection: in-process to the embedded
// server, or to the external NATS. Echo is off, so the relay never hears
// its own messages; nothing is buffered while disconnected (stale video is
// worth nothing: the receivers see the gap).
func (c *Cluster) connect() (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("vw relay " + c.cfg.Node),
		nats.NoEcho(),
		nats.ReconnectBufSize(-1),
		nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			f := logrus.Fields{"err": err}
			if sub != nil {
				f["subject"] = sub.Subject
			}
			c.log.WithFields(f).Debug("cluster: connection error")
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			c.log.WithField("err", err).Warn("cluster: disconnected from NATS")
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			c.log.Info("cluster: reconnected to NATS")
		}),
	}
	if c.srv != nil {
		nc, err := nats.Connect("", append(opts, nats.InProcessServer(c.srv), nats.UserInfo(c.clientUser, c.clientPass))...)
		if err != nil {
			return nil, fmt.Errorf("cluster: connecting in-process: %w", err)
		}
		return nc, nil
	}
	if c.cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.cfg.NATSCreds))
	}
	if c.cfg.TLSCert != "" || c.cfg.TLSCA != "" {
		tc, err := c.tlsConfig(false)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	nc, err := nats.Connect(c.cfg.NATS, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connecting to NATS %s: %w", c.cfg.NATS, err)
	}
	c.log.WithField("url", nc.ConnectedUrlRedacted()).Info("cluster: connected to NATS")
	return nc, nil
}

// natsLog puts the embedded server's log into the relay's: its notices at
// debug (a banner of a dozen lines at start), warnings at warn, errors at
// warn once a minute per kind and at debug otherwise (a peer that is down
// is retried every second), a fatal error as an error that fails Start.
type natsLog struct {
	log   *logrus.Entry
	fatal chan string

	mu   sync.Mutex
	last map[string]time.Time
}

func (l *natsLog) Noticef(f string, a ...any) { l.log.Debugf(f, a...) }
func (l *natsLog) Warnf(f string, a ...any) {
	if strings.HasPrefix(f, "Plaintext passwords") {
		// The only one is the loopback client port's, random per run.
		l.log.Debugf(f, a...)
		return
	}
	l.log.Warnf(f, a...)
}
func (l *natsLog) Debugf(f string, a ...any) { l.log.Tracef(f, a...) }
func (l *natsLog) Tracef(f string, a ...any) { l.log.Tracef(f, a...) }

func (l *natsLog) Errorf(f string, a ...any) {
	l.mu.Lock()
	now := time.Now()
	loud := now.Sub(l.last[f]) > time.Minute
	if loud {
		if l.last == nil || len(l.last) > 1000 {
			l.last = make(map[string]time.Time)
		}
		l.last[f] = now
	}
	l.mu.Unlock()
	if loud {
		l.log.Warnf(f, a...)
	} else {
		l.log.Debugf(f, a...)
	}
}

func (l *natsLog) Fatalf(f string, a ...any) {
	msg := fmt.Sprintf(f, a...)
	l.log.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
