//go:build unix

package push

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// rawSocket is conn's socket, or nil when conn is not one (e.g. TLS).
func rawSocket(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// errWouldBlock is readNow's answer when the socket has nothing to read.
var errWouldBlock = errors.New("socket has nothing to read")

// readNow reads what the socket has without waiting: errWouldBlock when it has nothing, io.EOF
// when the peer closed it.
func readNow(raw syscall.RawConn, p []byte) (n int, err error) {
	rawErr := raw.Read(func(fd uintptr) bool {
		for {
			n, err = syscall.Read(int(fd), p)
			if err != syscall.EINTR {
				return true
			}
		}
	})
	switch {
	case rawErr != nil: // closed
		return 0, rawErr
	case err == syscall.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
