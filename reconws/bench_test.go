package reconws

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sirupsen/logrus"
)

// sink is a websocket server that reads and discards, counting messages.
func sink(b *testing.B) (url string, count *atomic.Int64) {
	count = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{ReadBufferSize: 64 << 10}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			_, rd, err := conn.NextReader()
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, rd); err != nil {
				return
			}
			count.Add(1)
		}
	}))
	b.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), count
}

func waitCount(b *testing.B, count *atomic.Int64, n int64) {
	deadline := time.Now().Add(time.Minute)
	for count.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("sink got %d of %d", count.Load(), n)
		}
		runtime.Gosched()
	}
}

// BenchmarkWrite compares the write loop (a backlog framed into one buffer,
// one write) with gorilla's WriteMessage, one write per message, for small
// messages (7 TS packets, as ffmpeg's smallest chunks) and large ones.
func BenchmarkWrite(b *testing.B) {
	for _, size := range []int{7 * 188, 78 * 188} {
		data := make([]byte, size)
		b.Run(fmt.Sprintf("reconws/%d", size), func(b *testing.B) {
			url, count := sink(b)
			log := logrus.New()
			log.SetOutput(io.Discard)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, err := Start(ctx, Config{URL: url, Queue: 1024}, logrus.NewEntry(log))
			if err != nil {
				b.Fatal(err)
			}
			<-c.Ready()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				for !c.Send(data, false) {
					runtime.Gosched() // queue full: the benchmark is the producer
				}
			}
			waitCount(b, count, int64(b.N))
			b.StopTimer()
			cancel()
			<-c.Done()
		})
		b.Run(fmt.Sprintf("gorilla-per-message/%d", size), func(b *testing.B) {
			url, count := sink(b)
			conn, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				if err := conn.WriteMessage(websocket.BinaryMessage, data); err != nil {
					b.Fatal(err)
				}
			}
			waitCount(b, count, int64(b.N))
		})
	}
}
