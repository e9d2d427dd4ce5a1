//go:build !linux

package sockq

import "syscall"

// Unacked cannot tell here: only what the caller itself queues counts.
func Unacked(syscall.RawConn) int64 { return 0 }
