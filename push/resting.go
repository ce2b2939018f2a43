package push

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
)

// errResting is what a restingConn's Read returns instead of waiting when the client is between
// messages and has sent nothing more: the session's reader goroutine may end, to be started
// again when the socket becomes readable.
var errResting = errors.New("websocket at rest: nothing to read")

// restingConn is a server WebSocket's connection as the websocket library sees it. Its reads
// pass bytes through unchanged while following the client's frames, so it knows when the
// client is between messages. Until resting is allowed it reads like the connection;
// afterwards a read that would wait at such a point returns errResting instead, which lets an
// idle connection hold no goroutine and no stack.
//
// Reads run under the websocket library's read lock, so frames needs no lock of its own.
type restingConn struct {
	net.Conn
	raw     syscall.RawConn // nil when conn is not a socket (e.g. TLS): then it never rests
	pending []byte          // bytes that came with the upgrade request, read first
	frames  frameTracker
	mayRest atomic.Bool
}

func newRestingConn(conn net.Conn, pending []byte) *restingConn {
	return &restingConn{Conn: conn, raw: rawSocket(conn), pending: pending}
}

// canRest reports whether the reader can ever rest: only a socket can be asked whether it has
// bytes without waiting.
func (r *restingConn) canRest() bool { return r.raw != nil }

// Read implements io.Reader.
func (r *restingConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	switch {
	case len(r.pending) > 0:
		n = copy(p, r.pending)
		r.pending = r.pending[n:]
	case r.raw == nil:
		n, err = r.Conn.Read(p)
	default:
		n, err = r.readSocket(p)
	}
	r.frames.feed(p[:n])
	return n, err
}

// frameTracker follows the frame boundaries of a client's byte stream (RFC 6455 §5.2) without
// interpreting frames: the websocket library does that, and rejects what is malformed.
type frameTracker struct {
	header    [14]byte // the header being received: at most 2 + 8 length + 4 mask bytes
	headerLen int      // bytes of it received so far
	payload   uint64   // payload bytes of the current frame still to come
	inMessage bool     // a fragmented data message has begun and not finished
}

// atRest reports whether everything received ends exactly between two messages.
func (t *frameTracker) atRest() bool {
	return t.headerLen == 0 && t.payload == 0 && !t.inMessage
}

// feed accounts for bytes received.
func (t *frameTracker) feed(p []byte) {
	for len(p) > 0 {
		if t.payload > 0 {
			k := min(uint64(len(p)), t.payload)
			t.payload -= k
			p = p[k:]
			continue
		}
		t.header[t.headerLen] = p[0]
		t.headerLen++
		p = p[1:]
		if t.headerLen >= 2 && t.headerLen == frameHeaderSize(t.header[1]) {
			t.endHeader()
		}
	}
}

// frameHeaderSize is the size of a frame header given its second byte (mask bit and length).
func frameHeaderSize(b1 byte) int {
	size := 2
	switch b1 & 0x7f {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if b1&0x80 != 0 {
		size += 4
	}
	return size
}

func (t *frameTracker) endHeader() {
	fin, opcode := t.header[0]&0x80 != 0, t.header[0]&0x0f
	if opcode < 8 { // a data frame; control frames may come between fragments and end nothing
		t.inMessage = !fin
	}
	switch length := t.header[1] & 0x7f; length {
	case 126:
		t.payload = uint64(t.header[2])<<8 | uint64(t.header[3])
	case 127:
		t.payload = 0
		for _, b := range t.header[2:10] {
			t.payload = t.payload<<8 | uint64(b)
		}
	default:
		t.payload = uint64(length)
	}
	t.headerLen = 0
}
