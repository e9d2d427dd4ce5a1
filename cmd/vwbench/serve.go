package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/crossbar"
	"github.com/vwlab/vw/hub"
)

// The child protocol: the child prints "addr HOST:PORT" once it listens,
// answers each "rusage" line on stdin with "rusage USER_NS SYSTEM_NS" (its
// own CPU time so far), and exits when stdin closes.

// serveChild runs the server of the given kind until stdin closes or ctx
// ends.
func serveChild(ctx context.Context, kind string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve-"+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	queue := fs.Int("queue", crossbar.DefaultQueue, "relay: each viewer's queue, in messages")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the server's whole life to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	h, closeServer, err := childServer(kind, *queue, stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "addr %s\n", ln.Addr())
	runErr := answerParent(ctx, served, stdin, stdout)
	closeServer()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if runErr != nil && !errors.Is(runErr, http.ErrServerClosed) {
		return runErr
	}
	return nil
}

// childServer is the server of the given kind: the relay, or the floor.
func childServer(kind string, queue int, stderr io.Writer) (http.Handler, func(), error) {
	switch kind {
	case "relay":
		log := logrus.New()
		log.SetOutput(stderr)
		log.SetLevel(logrus.WarnLevel)
		// Every viewer comes from 127.0.0.1: lift the per-address cap.
		relay, err := crossbar.New(crossbar.Config{Queue: queue, MaxConnsPerAddr: 1 << 20, MaxViewers: 1 << 20}, hub.New(), logrus.NewEntry(log))
		if err != nil {
			return nil, nil, err
		}
		return relay.Handler(), relay.Close, nil
	case "floor":
		f := newFloor()
		return f, f.close, nil
	}
	return nil, nil, fmt.Errorf("no server %q", kind)
}

// answerParent answers the parent's "rusage" lines until stdin closes, ctx
// ends or the server stops (its error is returned).
func answerParent(ctx context.Context, served <-chan error, stdin io.Reader, stdout io.Writer) error {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-served:
			return err
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			if strings.TrimSpace(line) == "rusage" {
				user, sys, err := selfCPU()
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "rusage %d %d\n", user.Nanoseconds(), sys.Nanoseconds())
			}
		}
	}
}

// selfCPU returns this process's user and system CPU time.
func selfCPU() (user, sys time.Duration, err error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, err
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), nil
}

// floor is the naive reference: one loop, run by the publisher's reader,
// writes one PreparedMessage to every viewer in turn. A slow viewer slows
// everyone; nothing is isolated. It is the cheapest correct fan-out, so its
// CPU per byte is the floor the relay is compared with.
type floor struct {
	upgrader websocket.Upgrader
	mu       sync.Mutex
	viewers  map[*websocket.Conn]struct{}
	conns    map[*websocket.Conn]struct{} // viewers and publishers, to close
	closed   bool
	wg       sync.WaitGroup
}

func newFloor() *floor {
	return &floor{
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		viewers:  make(map[*websocket.Conn]struct{}),
		conns:    make(map[*websocket.Conn]struct{}),
	}
}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	f.wg.Add(1)
	f.mu.Unlock()
	defer f.wg.Done()
	c, err := f.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	viewer := !strings.HasPrefix(r.URL.Path, "/in/")
	f.mu.Lock()
	f.conns[c] = struct{}{}
	if viewer {
		f.viewers[c] = struct{}{}
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		delete(f.viewers, c)
		f.mu.Unlock()
	}()
	if !viewer {
		f.publish(c)
		return
	}
	for {
		if _, _, err := c.NextReader(); err != nil {
			return
		}
	}
}

// publish is the floor's fan-out loop.
func (f *floor) publish(c *websocket.Conn) {
	var viewers []*websocket.Conn
	for {
		mt, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		pm, err := websocket.NewPreparedMessage(mt, data)
		if err != nil {
			return
		}
		f.mu.Lock()
		viewers = viewers[:0]
		for v := range f.viewers {
			viewers = append(viewers, v)
		}
		f.mu.Unlock()
		for _, v := range viewers {
			_ = v.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := v.WritePreparedMessage(pm); err != nil {
				_ = v.Close()
			}
		}
	}
}

func (f *floor) close() {
	f.mu.Lock()
	f.closed = true
	for v := range f.conns {
		_ = v.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
		_ = v.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
