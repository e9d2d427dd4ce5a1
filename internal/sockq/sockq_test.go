package sockq

import (
	"crypto/tls"
	"net"
	"runtime"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestOfFindsTheSocket(t *testing.T) {
	c, _ := pair(t)
	if Of(c) == nil {
		t.Error("Of(TCP conn) = nil")
	}
	if Of(tls.Client(c, &tls.Config{})) == nil {
		t.Error("Of(TLS over TCP) = nil: it must look through NetConn")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if rc := Of(a); rc != nil {
		t.Errorf("Of(net.Pipe) = %v, want nil: there is no socket", rc)
	}
}

// A peer that does not read lets its receive buffer and then the sender's
// send buffer fill: what sits in the latter is unacknowledged.
func TestUnackedCountsWhatThePeerHoldsBack(t *testing.T) {
	c, _ := pair(t)
	rc := Of(c)
	if got := Unacked(rc); got != 0 {
		t.Errorf("Unacked before writing = %d, want 0", got)
	}
	if runtime.GOOS != "linux" {
		t.Skip("the kernel tells only on Linux")
	}
	buf := make([]byte, 1<<20)
	_ = c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	for {
		if _, err := c.Write(buf); err != nil {
			break // the send buffer is full: the deadline ended the write
		}
	}
	if got := Unacked(rc); got <= 0 {
		t.Errorf("Unacked with a peer that does not read = %d, want > 0", got)
	}
}
