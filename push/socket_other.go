//go:build !unix

package push

import (
	"errors"
	"net"
	"syscall"
)

// rawSocket is nil: reading a socket without waiting needs Unix.
func rawSocket(net.Conn) syscall.RawConn { return nil }

// errWouldBlock is never returned here.
var errWouldBlock = errors.New("socket has nothing to read")

// readNow is never called: without a raw socket a session keeps a reader goroutine.
func readNow(syscall.RawConn, []byte) (int, error) { return 0, errors.ErrUnsupported }
