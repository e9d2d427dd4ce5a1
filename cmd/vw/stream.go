package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/vwlab/vw/agg"
	"github.com/vwlab/vw/api"
	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/jsmpeg"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

// streamConfig is vw stream's configuration: VW_<NAME> or --<name>.
type streamConfig struct {
	Host          string `envconfig:"HOST" default:"127.0.0.1" desc:"address to listen on; anything but loopback needs --api-token"`
	Port          int    `envconfig:"PORT" default:"8888" desc:"port to listen on (0 picks a free one)"`
	LogLevel      string `envconfig:"LOGLEVEL" default:"info" desc:"log level: trace, debug, info, warn, error, fatal, panic"`
	LogFormat     string `envconfig:"LOG_FORMAT" default:"text" desc:"log format: text, or json (one object a line)"`
	API           string `envconfig:"API" desc:"ws:// or wss:// URL of a relay route that carries the control API (the apiRule destination)"`
	APIRelayToken string `envconfig:"API_RELAY_TOKEN" desc:"bearer token the apiRule destination presents to the relay"`
	APIToken      string `envconfig:"API_TOKEN" desc:"bearer token required on every route but /healthcheck"`
	Recordings    string `envconfig:"RECORDINGS" default:"./recordings" desc:"folder that destination \"file\" names are relative to"`
	CAFile        string `envconfig:"CA_FILE" desc:"PEM file of CAs to trust for wss:// destinations, on top of the system's"`
	MaxFeeds      int    `envconfig:"MAX_FEEDS_PER_STREAM" default:"16" desc:"most feeds one stream rule may combine"`
	MaxRules      int    `envconfig:"MAX_RULES" default:"256" desc:"most stream rules, and most destination rules"`
	AllowedHosts  string `envconfig:"ALLOWED_HOSTS" desc:"comma-separated host names clients may use to reach vw stream, besides loopback names and the listen address"`
	State         string `envconfig:"STATE" desc:"file that keeps the rules across restarts (default $STATE_DIRECTORY/rules.json, else ~/.local/state/vw/rules.json); off keeps none"`

	// The delay bound of every destination on a slow link (rwc sheds).
	MaxDelay time.Duration `envconfig:"MAX_DELAY" default:"1s" desc:"how far behind live a destination may fall on a slow link before it drops video up to keyframes (a rule's max_delay overrides); 0 never drops"`
}

// shutdownGrace bounds a graceful stop: the whole stop must fit in 5 s.
const shutdownGrace = 3 * time.Second

func newStreamCmd(stderr io.Writer) *cobra.Command {
	return newServeCmd("stream", "Run on the lab host: take ffmpeg feeds on /ts/{feed} and push streams to relays", runStream, stderr)
}

// runStream builds vw stream from its settings and serves until ctx ends.
// It is long on purpose: the wiring reads top to bottom in the order things
// are built (hub, muxer, destinations, rules, server), and shutdown undoes
// it in reverse; split up, that order would be scattered.
func runStream(ctx context.Context, cfg streamConfig, stderr io.Writer) error {
	log, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	if err := checkAPIToken(cfg); err != nil {
		return err
	}

	tlsCfg, err := rwc.TLSConfig(cfg.CAFile)
	if err != nil {
		return fmt.Errorf("VW_CA_FILE: %w", err)
	}
	h := hub.New()
	// Streams and feeds keep their latest keyframe onwards, so that the
	// local preview shows a picture at once.
	h.KeepWith(crossbar.KeyframeCaches(0, 0, func(topic string) bool {
		return strings.HasPrefix(topic, agg.StreamTopic("")) || strings.HasPrefix(topic, agg.FeedTopic(""))
	}))
	a, err := agg.New(agg.Config{}, h, log.WithField("component", "agg"))
	if err != nil {
		return err
	}
	maxDelay := cfg.MaxDelay
	if maxDelay <= 0 {
		maxDelay = -1 // rwc's zero is its default; VW_MAX_DELAY=0 never sheds
	}
	r, err := rwc.New(rwc.Config{Recordings: cfg.Recordings, Resolve: rules.Resolver(a), TLS: tlsCfg, MaxDelay: maxDelay}, h, log.WithField("component", "rwc"))
	if err != nil {
		a.Close()
		return err
	}
	rcfg := rules.Config{MaxFeedsPerStream: cfg.MaxFeeds, MaxRules: cfg.MaxRules}
	if cfg.API != "" {
		rcfg.APIRule = &rwc.Rule{Destination: cfg.API, Token: cfg.APIRelayToken}
	}
	rs, err := rules.New(rcfg, a, r, log.WithField("component", "rules"))
	if err != nil {
		r.Close()
		a.Close()
		return err
	}
	if err := restoreRules(ctx, rs, cfg.State, log); err != nil {
		rs.Close()
		return err
	}

	// The preview player connects straight to /ws/{stream}: there is no
	// access point on the lab host.
	pages := jsmpeg.New(jsmpeg.Config{Title: "vw stream", WSPath: "/ws/{stream}", Codec: rs.Codec})
	srv, err := api.New(api.Config{
		Token: cfg.APIToken, Player: pages.Handler(),
		ListenHost: cfg.Host, AllowedHosts: splitList(cfg.AllowedHosts),
	}, h, rs, log.WithField("component", "api"))
	if err != nil {
		rs.Close()
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		rs.Close()
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          httpErrorLog(log),
	}
	ctlCtx, stopControl := context.WithCancel(context.Background())
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		srv.RunControl(ctlCtx)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.WithFields(logrus.Fields{"addr": ln.Addr().String(), "api": cfg.API, "max_delay": cfg.MaxDelay, "version": version}).Info("vw stream listening")

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	log.Info("vw stream stopping")
	// Ingest bodies and previews last for hours: end them first, or
	// Shutdown would wait for them.
	srv.Close()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if serr := hs.Shutdown(sctx); serr != nil {
		_ = hs.Close()
	}
	stopControl()
	<-ctlDone
	rs.Close()
	log.Info("vw stream stopped")
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// minAPIToken is the shortest VW_API_TOKEN accepted when other machines can
// reach vw stream: a short one can be guessed over the network.
const minAPIToken = 16

// checkAPIToken refuses to listen beyond loopback without a token, or with
// one too short to stand up to guessing.
func checkAPIToken(cfg streamConfig) error {
	switch {
	case isLoopback(cfg.Host):
		return nil
	case cfg.APIToken == "":
		return fmt.Errorf("VW_HOST=%s lets other machines reach the API: set VW_API_TOKEN (--api-token) too", cfg.Host)
	case len(cfg.APIToken) < minAPIToken:
		return fmt.Errorf("VW_API_TOKEN is %d bytes: with VW_HOST=%s other machines can try to guess it, so use at least %d (head -c 24 /dev/urandom | base64)",
			len(cfg.APIToken), cfg.Host, minAPIToken)
	}
	return nil
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// isLoopback reports whether host only accepts connections from this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// restoreRules installs the rules saved in the state file, then saves every
// change to it. An unusable file is moved aside and reported, and vw stream
// starts with no rules rather than not at all: the API must come up so that an
// operator can put things right.
func restoreRules(ctx context.Context, rs *rules.Service, path string, log *logrus.Entry) error {
	if path == "off" {
		log.Warn("VW_STATE=off: rules will not survive a restart")
		return nil
	}
	if path == "" {
		path = rules.DefaultStatePath()
	}
	log = log.WithField("state", path)
	st, err := rules.LoadState(path)
	if err == nil {
		err = rs.Restore(ctx, st)
		if err != nil {
			err = rules.MoveAside(path, err)
		}
	}
	if err != nil {
		log.WithField("err", err).Error("starting with no rules")
	} else {
		log.WithFields(logrus.Fields{"streams": len(st.Streams), "destinations": len(st.Destinations)}).Info("rules restored")
	}
	rs.OnChange(func() {
		if err := rules.SaveState(path, rs.Snapshot()); err != nil {
			log.WithField("err", err).Error("could not save rules: this change will not survive a restart")
		}
	})
	// A first save proves the folder is writable now, not at the first change.
	if err := rules.SaveState(path, rs.Snapshot()); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}
