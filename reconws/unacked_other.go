//go:build !linux

package reconws

import "syscall"

// unacked cannot tell here: only the client's own queue counts.
func unacked(syscall.RawConn) int64 { return 0 }
