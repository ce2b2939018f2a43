//go:build unix

package push

import (
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

// readSocket reads what the socket has; when it has nothing it waits, or, if resting is allowed
// and the client is between messages, returns errResting.
func (r *restingConn) readSocket(p []byte) (n int, err error) {
	rawErr := r.raw.Read(func(fd uintptr) bool {
		for {
			n, err = syscall.Read(int(fd), p)
			if err != syscall.EINTR {
				break
			}
		}
		if err == syscall.EAGAIN {
			if r.mayRest.Load() && r.frames.atRest() {
				err = errResting
				return true
			}
			return false // wait until readable, then try again
		}
		return true
	})
	switch {
	case rawErr != nil: // closed, or a deadline passed
		return 0, rawErr
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
