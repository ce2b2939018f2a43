package push

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
)

// wsBufferSize is the read and write buffer of a WebSocket. Frames in either direction are
// tens of bytes (notifications, acks, pings); larger ones (an auth message with a big token)
// simply take more system calls. net/http hands a hijacked connection 4 KiB buffers each way,
// which at tens of thousands of idle sockets would be most of their memory.
const wsBufferSize = 256

// smallBuffers is the ResponseWriter passed to websocket.Accept: its Hijack trades the server's
// buffers for small ones, carrying over any bytes the client already sent, and hands over the
// connection as a restingConn, which it also leaves in conn.
type smallBuffers struct {
	http.ResponseWriter
	conn **restingConn
}

// Hijack takes the connection over from net/http.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the client sent after its upgrade request sit in net/http's reader: they are read
	// before the socket's.
	var leftover []byte
	if n := brw.Reader.Buffered(); n > 0 {
		pending, _ := brw.Reader.Peek(n)
		leftover = bytes.Clone(pending)
	}
	// The session's pings watch the peer; TCP keep-alive probes (net/http enables them every
	// 15 s) would only add a packet and its answer per idle socket and heartbeat.
	// The listener may wrap the socket (per-address limits), so ask for the method, not the type.
	if ka, ok := conn.(interface{ SetKeepAlive(bool) error }); ok {
		_ = ka.SetKeepAlive(false)
	}
	rc := newRestingConn(conn, leftover)
	*w.conn = rc
	return rc, bufio.NewReadWriter(bufio.NewReaderSize(rc, wsBufferSize), bufio.NewWriterSize(conn, wsBufferSize)), nil
}
