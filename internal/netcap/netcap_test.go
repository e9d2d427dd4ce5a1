package netcap

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vwlab/vw/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink is a TCP server that keeps what it reads and can talk back.
type sink struct {
	ln   net.Listener
	mu   sync.Mutex
	got  bytes.Buffer
	conn net.Conn
	wg   sync.WaitGroup
}

func newSink(t *testing.T) *sink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conn = c
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					s.mu.Lock()
					s.got.Write(buf[:n])
					s.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		if s.conn != nil {
			s.conn.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got.Len()
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>8)
	}
	return b
}

func listen(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Listen(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Both directions arrive intact and in order, uncapped.
func TestCarriesBothWays(t *testing.T) {
	s := newSink(t)
	p := listen(t, s.ln.Addr().String())
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	up := pattern(1 << 20)
	if _, err := c.Write(up); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return s.len() == len(up) }, "target got %d of %d bytes", s.len(), len(up))
	s.mu.Lock()
	same := bytes.Equal(s.got.Bytes(), up)
	back := s.conn
	s.mu.Unlock()
	if !same {
		t.Fatal("bytes changed on the way up")
	}
	down := pattern(300 << 10)
	go back.Write(down)
	got := make([]byte, len(down))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, down) {
		t.Fatalf("down: %v, intact=%v", err, bytes.Equal(got, down))
	}
	// The proxy counts a chunk once its write returned, which may be just
	// after the reader had it.
	testutil.Eventually(t, 5*time.Second, func() bool {
		return p.Accepted() == 1 && p.Up.Bytes() == uint64(len(up)) && p.Down.Bytes() == uint64(len(down))
	}, "accepted %d, carried %d up and %d down", p.Accepted(), p.Up.Bytes(), p.Down.Bytes())
}

// A capped link carries no faster than its rate, and lifting the cap lets
// the rest through at once.
func TestCap(t *testing.T) {
	s := newSink(t)
	p := listen(t, s.ln.Addr().String())
	const rate = 100 << 10
	p.SetRate(rate, 0)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := pattern(1 << 20)
	start := time.Now()
	go c.Write(data)
	testutil.Eventually(t, 10*time.Second, func() bool { return s.len() >= 150<<10 }, "capped link carried %d bytes", s.len())
	took := time.Since(start)
	if floor := time.Duration(float64(150<<10-8<<10) / rate * float64(time.Second)); took < floor {
		t.Errorf("150 KiB crossed a %d B/s link in %v, faster than %v", rate, took, floor)
	}
	if got := s.len(); got > len(data)/2 {
		t.Fatalf("%d bytes through at once: not capped", got)
	}
	p.SetRate(0, 0)
	testutil.Eventually(t, 5*time.Second, func() bool { return s.len() == len(data) }, "after the cap lifted: %d of %d bytes", s.len(), len(data))
}

// Close drops live connections and ends every goroutine (goleak checks).
func TestClose(t *testing.T) {
	s := newSink(t)
	p := listen(t, s.ln.Addr().String())
	p.SetRate(1000, 1000)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go c.Write(pattern(64 << 10))
	testutil.Eventually(t, 5*time.Second, func() bool { return p.Open() == 1 }, "no connection")
	p.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Close")
	}
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Fatal("still accepting after Close")
	}
}

// TestCapFor: the cap is in force until last runs, lifted after, and lasts
// at least d; a cancelled context lifts it at once.
func TestCapFor(t *testing.T) {
	var l Link
	var during float64
	capped, lifted := l.CapFor(context.Background(), 1000, 50*time.Millisecond, func() { during = l.Rate() })
	if during != 1000 || l.Rate() != 0 {
		t.Errorf("rate %v while capped and %v after, want 1000 and 0", during, l.Rate())
	}
	if lifted.Sub(capped) < 50*time.Millisecond {
		t.Errorf("capped for %v, want at least 50ms", lifted.Sub(capped))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if capped, lifted := l.CapFor(ctx, 1000, time.Hour, nil); lifted.Sub(capped) > time.Minute || l.Rate() != 0 {
		t.Errorf("a cancelled cap lasted %v and left rate %v", lifted.Sub(capped), l.Rate())
	}
}
