// Package reconws owns one reconnecting websocket client: it dials with a
// timeout (optionally with a bearer token and a TLS config), keeps the
// connection alive with ping/pong deadlines, redials when it drops (every
// 250 ms for the first seconds of an outage, then with exponential backoff,
// always with jitter), and stops cleanly with a close frame.
//
// Each connection has a read loop and a write loop, as in gorilla/websocket's
// chat example. Send never blocks: it puts a message on a bounded queue, or
// refuses it when the client is not connected or the queue is full. The write
// loop frames a whole backlog into one buffer and writes it with one syscall.
package reconws

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/internal/defaults"
)

// Defaults for the zero fields of Config.
const (
	DefaultDialTimeout  = 5 * time.Second
	DefaultBackoffMin   = 250 * time.Millisecond
	DefaultBackoffMax   = 10 * time.Second
	DefaultFastFor      = 5 * time.Second
	DefaultResetAfter   = 5 * time.Second
	DefaultPingInterval = 10 * time.Second
	DefaultWriteWait    = 10 * time.Second
	DefaultCloseTimeout = 2 * time.Second
	DefaultQueue        = 256
	DefaultReadLimit    = 1 << 20
	DefaultMaxBatch     = 256 << 10
)

// Config shapes a Client. Zero durations and sizes take the defaults above;
// negative ones are an error.
type Config struct {
	// URL is the ws:// or wss:// address to dial.
	URL string
	// Token, if set, is sent as "Authorization: Bearer <Token>" on every
	// handshake.
	Token string
	// TLS configures wss:// connections (a custom RootCAs pool, say); nil
	// means the system roots. Certificates are always verified.
	TLS *tls.Config

	// DialTimeout bounds one dial, TCP and TLS and websocket handshakes.
	DialTimeout time.Duration
	// BackoffMin is the wait between redials for the first FastFor of an
	// outage; after that each failure doubles the wait up to BackoffMax.
	// Every wait used is jittered within [step/2, step].
	BackoffMin, BackoffMax time.Duration
	// FastFor is how long into an outage redials stay at BackoffMin.
	FastFor time.Duration
	// ResetAfter: only a connection that lived at least this long ends an
	// outage, so that the next one starts fast again; a connection that
	// dies younger continues the outage it interrupted.
	ResetAfter time.Duration
	// PingInterval is how often the client pings; a peer that sends nothing
	// (no pong, no data) for PongWait is taken as dead. PongWait defaults
	// to 1.5 × PingInterval.
	PingInterval, PongWait time.Duration
	// WriteWait bounds one write; a peer that does not read for that long is
	// dropped and redialled.
	WriteWait time.Duration
	// CloseTimeout bounds a graceful close: flushing the queue, sending the
	// close frame and waiting for the peer's reply.
	CloseTimeout time.Duration
	// Queue is the send queue length in messages.
	Queue int
	// ReadLimit is the largest message accepted from the peer, in bytes.
	ReadLimit int64
	// MaxBatch is roughly the most bytes the write loop frames into one
	// write; a single larger message still goes in one write.
	MaxBatch int

	// OnMessage, if set, receives every data message from the peer, from the
	// read loop's goroutine; it must not block for long. It is never called
	// after Done is closed.
	OnMessage func(Message)

	// clock runs the redial schedule; nil is the real one. Tests set it.
	clock clock
}

// Message is a data message from the peer.
type Message struct {
	Data []byte
	Text bool
}

// Stats are a client's counters.
type Stats struct {
	// Connects counts successful handshakes; Failures counts failed dials.
	Connects uint64 `json:"connects"`
	Failures uint64 `json:"failures"`
	// Backoff is the wait used before the latest redial (zero before any).
	Backoff time.Duration `json:"backoffNs"`
	// Sent counts messages written to a connection; Dropped counts those
	// Send refused or a dropped connection lost from the queue.
	Sent    uint64 `json:"sent"`
	Dropped uint64 `json:"dropped"`
	// SentBytes counts the payload bytes of the messages sent.
	SentBytes uint64 `json:"sentBytes"`
	// LastConnect is when the latest connection was made (zero before any).
	LastConnect time.Time `json:"lastConnect"`
}

type outMsg struct {
	data []byte
	text bool
}

// Client is one reconnecting websocket client. Create it with Start.
type Client struct {
	cfg    Config
	log    *logrus.Entry
	dialer websocket.Dialer
	header http.Header

	send      chan outMsg
	connected atomic.Bool
	ready     chan struct{} // closed at the first connection
	readyOnce sync.Once

	closing   chan struct{} // closed by Close: flush, then close frame
	closeOnce sync.Once
	stopDial  context.CancelFunc // aborts a dial or a backoff wait on Close
	done      chan struct{}

	connects, failures, sent, dropped atomic.Uint64
	sentBytes                         atomic.Uint64
	backoff                           atomic.Int64

	queued      atomic.Int64            // framed bytes accepted by Send, not yet written
	written     atomic.Uint64           // bytes written to connections
	raw         atomic.Pointer[rawConn] // the current connection's socket, while connected
	lastConnect atomic.Int64            // Unix nanoseconds; 0 before any
}

// Start validates cfg and returns a client that is already dialling. It
// never blocks on the network. Cancelling ctx stops the client at once with
// a close frame (nothing more is flushed); Close stops it gracefully. Either
// way Done is closed when every goroutine of the client has ended.
func Start(ctx context.Context, cfg Config, log *logrus.Entry) (*Client, error) {
	if err := CheckURL(cfg.URL); err != nil {
		return nil, err
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("reconws: %w", err)
	}
	c := &Client{
		cfg: cfg,
		log: log.WithField("url", cfg.URL),
		dialer: websocket.Dialer{
			Proxy:            http.ProxyFromEnvironment,
			HandshakeTimeout: cfg.DialTimeout,
			TLSClientConfig:  cfg.TLS,
			// Data frames are framed by the write loop into its own
			// buffer; gorilla's write buffer only ever sees nothing.
			WriteBufferSize: 512,
		},
		header:  http.Header{},
		send:    make(chan outMsg, cfg.Queue),
		ready:   make(chan struct{}),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if cfg.Token != "" {
		c.header.Set("Authorization", "Bearer "+cfg.Token)
	}
	dialCtx, stopDial := context.WithCancel(ctx)
	c.stopDial = stopDial
	go c.run(ctx, dialCtx)
	return c, nil
}

// CheckURL reports whether u is a URL the client can dial: ws:// or wss://
// with a host.
func CheckURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("destination %q is not a URL: %v", u, err)
	}
	if p.Scheme != "ws" && p.Scheme != "wss" {
		return fmt.Errorf("destination must be a ws:// or wss:// URL, not %q", u)
	}
	if p.Host == "" || p.Hostname() == "" {
		return fmt.Errorf("destination %q has no host", u)
	}
	return nil
}

func (c Config) withDefaults() (Config, error) {
	err := errors.Join(
		defaults.Positive("DialTimeout", &c.DialTimeout, DefaultDialTimeout),
		defaults.Positive("BackoffMin", &c.BackoffMin, DefaultBackoffMin),
		defaults.Positive("BackoffMax", &c.BackoffMax, DefaultBackoffMax),
		defaults.Positive("FastFor", &c.FastFor, DefaultFastFor),
		defaults.Positive("ResetAfter", &c.ResetAfter, DefaultResetAfter),
		defaults.Positive("PingInterval", &c.PingInterval, DefaultPingInterval),
		defaults.Positive("WriteWait", &c.WriteWait, DefaultWriteWait),
		defaults.Positive("CloseTimeout", &c.CloseTimeout, DefaultCloseTimeout),
		defaults.Positive("Queue", &c.Queue, DefaultQueue),
		defaults.Positive("ReadLimit", &c.ReadLimit, DefaultReadLimit),
		defaults.Positive("MaxBatch", &c.MaxBatch, DefaultMaxBatch),
	)
	// After the join: PongWait's default follows PingInterval's value.
	err = errors.Join(err, defaults.Positive("PongWait", &c.PongWait, c.PingInterval*3/2))
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	if c.clock == nil {
		c.clock = realClock{}
	}
	return c, err
}

// URL returns the address the client dials.
func (c *Client) URL() string { return c.cfg.URL }

// Send queues one message for the peer and reports whether it was queued. It
// never blocks: it refuses when the client is not connected or its queue is
// full. data must not be modified afterwards.
func (c *Client) Send(data []byte, text bool) bool {
	if !c.connected.Load() {
		c.dropped.Add(1)
		return false
	}
	n := frameLen(len(data))
	c.queued.Add(n) // before the write loop can take it off
	select {
	case c.send <- outMsg{data, text}:
		return true
	default:
		c.queued.Add(-n)
		c.dropped.Add(1)
		return false
	}
}

// Connected reports whether a connection is up now.
func (c *Client) Connected() bool { return c.connected.Load() }

// Ready is closed when the client first connects.
func (c *Client) Ready() <-chan struct{} { return c.ready }

// Done is closed when the client has stopped.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close stops the client gracefully and returns at once: what is queued is
// written, a close frame is sent and the peer's reply awaited, all within
// CloseTimeout; a dial or backoff in progress is abandoned. Wait on Done.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.stopDial()
	})
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	st := Stats{
		Connects: c.connects.Load(),
		Failures: c.failures.Load(),
		Backoff:  time.Duration(c.backoff.Load()),
		Sent:     c.sent.Load(),
		Dropped:  c.dropped.Load(),

		SentBytes: c.sentBytes.Load(),
	}
	if ns := c.lastConnect.Load(); ns != 0 {
		st.LastConnect = time.Unix(0, ns)
	}
	return st
}

// run owns the client's lifetime: dial, serve the connection, back off,
// redial, until ctx is cancelled or Close is called (dialCtx ends with both).
func (c *Client) run(ctx, dialCtx context.Context) {
	defer close(c.done)
	defer c.stopDial()
	clk := c.cfg.clock
	sched := schedule{lo: c.cfg.BackoffMin, hi: c.cfg.BackoffMax, fast: c.cfg.FastFor}
	lastWarn := ""
	for first := true; ; first = false {
		if !first {
			d := sched.next(clk.Now())
			c.backoff.Store(int64(d))
			c.log.WithField("backoff", d).Debug("redialling after backoff")
			fire, stop := clk.Timer(d)
			select {
			case <-dialCtx.Done():
				stop()
				return
			case <-fire:
			}
		}
		conn, err := c.dial(dialCtx)
		if err != nil {
			if dialCtx.Err() != nil {
				return
			}
			c.failures.Add(1)
			// A refused certificate or handshake will not fix itself:
			// say so loudly, once per distinct error.
			if lasting(err) && err.Error() != lastWarn {
				lastWarn = err.Error()
				c.log.WithField("err", err).Warn("cannot connect")
			} else {
				c.log.WithField("err", err).Debug("dial failed")
			}
			continue
		}
		// Before anything shows the connection: its life starts here.
		began := clk.Now()
		lastWarn = ""
		c.discardQueue()
		c.lastConnect.Store(began.UnixNano())
		c.connects.Add(1)
		c.raw.Store(rawOf(conn))
		c.connected.Store(true)
		c.readyOnce.Do(func() { close(c.ready) })
		c.log.Info("connected")
		stopped, err := c.serve(ctx, dialCtx, conn)
		c.connected.Store(false)
		c.raw.Store(nil)
		c.discardQueue()
		if stopped {
			c.log.Info("disconnected: stopped")
			return
		}
		c.log.WithField("err", err).Info("disconnected")
		if clk.Now().Sub(began) >= c.cfg.ResetAfter {
			sched.reset()
		}
	}
}

// discardQueue drops what is queued for a connection that is gone.
func (c *Client) discardQueue() {
	for {
		select {
		case m := <-c.send:
			c.queued.Add(-frameLen(len(m.data)))
			c.dropped.Add(1)
		default:
			return
		}
	}
}

func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	conn, resp, err := c.dialer.DialContext(ctx, c.cfg.URL, c.header)
	if err != nil {
		if resp != nil {
			// gorilla keeps up to 1 KiB of a refusal's body: the relay's
			// reason is worth more in the log than "bad handshake".
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
			reason := strings.TrimSpace(string(body))
			return nil, &HandshakeError{Status: resp.StatusCode, Reason: reason}
		}
		return nil, err
	}
	return conn, nil
}

// HandshakeError is a dial that reached a server that refused the upgrade.
type HandshakeError struct {
	Status int
	Reason string
}

func (e *HandshakeError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("websocket handshake refused: %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("websocket handshake refused: %d %s: %s", e.Status, http.StatusText(e.Status), e.Reason)
}

// lasting reports errors that retrying will not cure by itself: a refused
// certificate or a refused handshake.
func lasting(err error) bool {
	var cv *tls.CertificateVerificationError
	var he *HandshakeError
	return errors.As(err, &cv) || errors.As(err, &he)
}
