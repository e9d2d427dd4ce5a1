// Package sockq asks the kernel about the socket under a connection: how
// many of the bytes written to it the peer has not yet acknowledged. The
// relay uses it to tell how far behind a viewer is, the reconnecting client
// how far behind its own sending is.
package sockq

import (
	"net"
	"syscall"
)

// Of finds the socket under c, through TLS and any other wrapper that
// gives its NetConn, for asking the kernel about it; nil if there is none.
func Of(c net.Conn) syscall.RawConn {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
