package push

import (
	"crypto/tls"
	"net"
	"syscall"
	"time"
)

// A push session keeps at most one notification in flight: it writes the next one only once
// the socket's send queue is empty, that is, once the peer's TCP has acknowledged every byte
// written before. While the queue is not empty the news stays in the hub, where later
// advances replace it (latest wins), so a reader that stops reading costs the server one
// frame in the kernel and nothing in memory, however many commits its user makes
// (invariant I5). When the peer resumes it reads what its own kernel had already accepted
// and then one frame with the latest seq.
//
// A peer whose queue does not drain for WriteTimeout while the session has something to
// write is stalled: the session ends (WebSocket close 4008, SSE an ended response).
//
// The send queue is read with SIOCOUTQ on Linux; elsewhere, or on a connection that is not a
// socket, the gate is always open and only the per-write deadline bounds a stalled peer.
const (
	// minDrainPoll and maxDrainPoll bound the wait before a session looks at an undrained
	// socket again. The first looks come quickly, since a reading peer acknowledges within a
	// round trip or its delayed-ACK timer (40 ms on Linux); a stalled one is then looked at
	// ten times a second until it drains or its stall outlasts WriteTimeout.
	minDrainPoll = time.Millisecond
	maxDrainPoll = 100 * time.Millisecond
)

// drainGate decides when a session may write its next notification. It belongs to whoever
// holds the session's writer role; it needs no lock of its own.
type drainGate struct {
	socket       syscall.RawConn // nil: the send queue cannot be read, the gate is always open
	stalledSince time.Time       // when a write was first held back by an undrained queue; zero when open
	poll         time.Duration   // the wait before the next look at an undrained queue
}

// newDrainGate returns a gate for conn's socket; it unwraps TLS, whose records are bytes of
// the same socket.
func newDrainGate(conn net.Conn) drainGate {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	return drainGate{socket: rawSocket(conn)}
}

// check reports whether a frame may be written now. If not, wait is how long to leave the
// socket before checking again, unless stalled reports that the queue has not drained for
// limit: then the session must end.
func (g *drainGate) check(limit time.Duration) (wait time.Duration, stalled bool) {
	if g.socket == nil || sendQueue(g.socket) == 0 {
		g.stalledSince, g.poll = time.Time{}, 0
		return 0, false
	}
	now := time.Now()
	if g.stalledSince.IsZero() {
		g.stalledSince = now
	}
	if now.Sub(g.stalledSince) >= limit {
		return 0, true
	}
	g.poll = min(max(2*g.poll, minDrainPoll), maxDrainPoll)
	return g.poll, false
}
