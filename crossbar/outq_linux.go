package crossbar

import (
	"syscall"
	"unsafe"
)

// outq asks the kernel how many bytes of a socket's send queue the peer has
// not acknowledged (SIOCOUTQ, TIOCOUTQ on Linux): bytes the relay has
// written that a viewer on a slow link has not yet received.
func outq(rc syscall.RawConn) int64 {
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
