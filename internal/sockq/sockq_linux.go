package sockq

import (
	"syscall"
	"unsafe"
)

// Unacked is how many bytes of the socket's send queue the peer has not
// acknowledged (SIOCOUTQ, TIOCOUTQ on Linux): bytes written that are still
// in the send buffer or on the wire, on a slow link most of a backlog.
func Unacked(rc syscall.RawConn) int64 {
	var n int32
	var errno syscall.Errno
	err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	})
	if err != nil || errno != 0 || n < 0 {
		return 0
	}
	return int64(n)
}
