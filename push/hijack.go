package push

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// wsBufferSize is the read and write buffer of a WebSocket. Frames in either direction are
// tens of bytes (notifications, acks, pings); larger ones (an auth message with a big token)
// simply take more system calls. net/http hands a hijacked connection 4 KiB buffers each way,
// which at tens of thousands of idle sockets would be most of their memory.
const wsBufferSize = 256

// smallBuffers is the ResponseWriter passed to websocket.Accept: its Hijack trades the server's
// buffers for small ones, carrying over any bytes the client already sent.
type smallBuffers struct{ http.ResponseWriter }

// Hijack takes the connection over from net/http.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the client sent after its upgrade request sit in net/http's reader: move them into
	// the new reader's buffer, where the websocket library picks them up.
	pending, _ := brw.Reader.Peek(brw.Reader.Buffered())
	leftover := bytes.Clone(pending)
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(leftover), conn), max(wsBufferSize, len(leftover)))
	if len(leftover) > 0 {
		if _, err := r.Peek(len(leftover)); err != nil {
			return nil, nil, err
		}
	}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(conn, wsBufferSize)), nil
}
