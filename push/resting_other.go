//go:build !unix

package push

import (
	"net"
	"syscall"
)

// rawSocket is nil: resting needs non-blocking reads of a Unix socket.
func rawSocket(net.Conn) syscall.RawConn { return nil }

// readSocket reads from the connection; a WebSocket here never rests.
func (r *restingConn) readSocket(p []byte) (int, error) { return r.Conn.Read(p) }
