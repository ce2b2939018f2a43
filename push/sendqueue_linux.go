package push

import (
	"syscall"
	"unsafe"
)

// sendQueue returns the bytes written to socket that its peer has not yet acknowledged
// (SIOCOUTQ, which Linux numbers as TIOCOUTQ). A socket that cannot be asked, e.g. one
// already closed, counts as drained: the session's next write then fails and ends it.
func sendQueue(socket syscall.RawConn) int {
	var queued int32
	err := socket.Control(func(fd uintptr) {
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&queued)))
		if errno != 0 {
			queued = 0
		}
	})
	if err != nil {
		return 0
	}
	return int(queued)
}
