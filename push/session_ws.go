package push

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// WebSocket close codes of the push protocol.
const (
	CloseTokenExpired = websocket.StatusCode(4001) // the token's exp passed: reconnect with a fresh one
	CloseForbidden    = websocket.StatusCode(4003) // no valid token
	CloseRestart      = websocket.StatusServiceRestart
	CloseTryLater     = websocket.StatusTryAgainLater // a connection cap is full
	// CloseStalled ends a session whose peer took no bytes for WriteTimeout while a
	// notification waited: the frame is queued behind what the peer has not read, so it sees
	// the code once it reads again, and reconnects.
	CloseStalled = websocket.StatusCode(4008)
)

// Peer is the authenticated device behind a session.
type Peer struct {
	User    string
	Source  string
	Expires time.Time // zero = the token never expires
}

// ErrTokenExpired is what an Authenticator returns (wrapped) for an expired token, which closes
// a WebSocket with 4001 rather than 4003.
var ErrTokenExpired = errors.New("token expired")

// Authenticator verifies a token a browser sent in its first message.
type Authenticator func(ctx context.Context, token string) (Peer, error)

// WSRequest is an upgraded request's parameters.
type WSRequest struct {
	// Peer is the device authenticated from the Authorization header, admitted with Ticket;
	// nil when the token is to come in the first message, checked with Authenticate.
	Peer         *Peer
	Ticket       *Ticket
	Authenticate Authenticator
	After        int64
	Schema       string
}

const (
	// maxClientMessage bounds what a client may send: an auth message with a large token.
	maxClientMessage = 16 << 10
	// wsReadBuffer is what a reader takes from the socket at a time, on its own stack: client
	// frames are tens of bytes (acks, pongs), an auth message a few hundred.
	wsReadBuffer = 512
	// closeWait is how long a session that sent its close frame waits for the peer's answer
	// before it closes the connection anyway.
	closeWait = 5 * time.Second
)

// ServeWS upgrades the request to a WebSocket and runs the session on it until the peer goes,
// its token expires or the service shuts down. A request that is not a valid upgrade is
// answered with an HTTP error.
func (s *Service) ServeWS(w http.ResponseWriter, r *http.Request, req WSRequest) {
	conn, leftover := upgrade(w, r)
	if conn == nil {
		if req.Ticket != nil {
			req.Ticket.Release()
		}
		return
	}
	ws := &wsSession{svc: s, conn: conn, raw: rawSocket(conn), req: req, leftover: leftover, gate: newDrainGate(conn)}
	// The session's context is not the request's: that one keeps the request, its headers and
	// the router's state alive for as long as the connection lasts. The request's goroutine,
	// deep in the router's frames, ends when start returns.
	if ws.start(context.Background()) {
		ws.listen()
	}
}

// wsSession is one WebSocket. No goroutine waits on an idle one and it keeps no buffer: a
// reader runs while the client's bytes arrive (see listen), a writer while there is something
// to send, and a timer brings the heartbeat, the token's expiry and the end of a close
// handshake.
type wsSession struct {
	svc  *Service
	conn net.Conn
	raw  syscall.RawConn // the socket's; nil when conn is not a plain socket (e.g. TLS)
	req  WSRequest
	peer Peer
	// Set up by start before the session can be reached from another goroutine:
	sub   *Subscription
	watch *watch    // nil when the socket cannot rest: then one goroutine reads for its life
	gate  drainGate // the writer's: at most one notification in flight

	// The reader's, one at a time:
	leftover []byte       // bytes that came before the session read the socket, read first
	parser   *frameParser // nil between messages, so that an idle session holds none

	writeMu   sync.Mutex // frames go out whole, one at a time
	closeSent bool       // guarded by writeMu

	timerMu sync.Mutex // guards the fields below
	timer   *time.Timer
	due     time.Time // when the timer is set to fire; a firing before is stale
	pingOut bool      // a ping awaits its pong
	closing bool      // the close frame is out (or going); the timer ends the wait for the answer
	over    bool      // ended: the timer stays stopped

	writing atomic.Bool // a writer goroutine, or a timer waiting for the socket to drain, holds the writer's role
	dirty   atomic.Bool // something arrived since the writer last looked
	ready   atomic.Bool // the ready frame is out: notifications may follow

	endOnce sync.Once
}

// start authenticates and subscribes the session and sends its ready frame. It reports whether
// the session is live; if not, everything it took is released and the connection is closed.
func (ws *wsSession) start(ctx context.Context) (live bool) {
	if !ws.authenticate(ctx) {
		return false
	}
	sub, seq, err := ws.svc.subscribe(ctx, SubscribeOptions{User: ws.peer.User, Source: ws.peer.Source,
		Schema: ws.req.Schema, After: ws.req.After, Wake: ws.wake})
	if err != nil {
		ws.svc.cfg.Logger.Warn("push subscribe failed", "user", ws.peer.User, "err", err)
		ws.refuse(websocket.StatusInternalError, "try again later")
		ws.req.Ticket.Release()
		return false
	}
	ws.sub = sub
	if ws.svc.readiness != nil && ws.raw != nil {
		ws.watch = ws.svc.readiness.Watch(ws.raw, ws.readAvailable)
	}
	if !ws.write(readyFrame(seq, ws.svc.cfg.Heartbeat)) {
		return false
	}
	ws.timerMu.Lock()
	if !ws.over {
		d := ws.untilNextTick()
		ws.due, ws.timer = time.Now().Add(d), time.AfterFunc(d, ws.tick)
	}
	ws.timerMu.Unlock()
	if !ws.req.Ticket.onShutdown(func() { ws.close(CloseRestart, "server restarting") }) {
		ws.refuse(CloseRestart, "server restarting")
		ws.end()
		return false
	}
	ws.ready.Store(true)
	ws.wake() // whatever arrived before ready, e.g. the catch-up for a stale after
	return true
}

// listen reads the client from now on. Where the socket can rest, a reader goroutine starts
// each time bytes arrive and ends once it has read them; elsewhere one goroutine reads for the
// connection's life.
func (ws *wsSession) listen() {
	if pending := ws.leftover; len(pending) > 0 {
		ws.leftover = nil
		if !ws.receive(pending) {
			return
		}
	}
	if ws.watch != nil {
		if ws.watch.Arm() == nil {
			return
		}
		// The epoll set refused the socket (past fs.epoll.max_user_watches, say): this session
		// keeps a reader, like one on a platform without readiness polling.
	}
	go ws.readForever()
}

// authenticate admits the peer: from the header (already verified and admitted), or from a
// first {"type":"auth"} message within AuthTimeout.
func (ws *wsSession) authenticate(ctx context.Context) bool {
	if ws.req.Peer != nil {
		ws.peer = *ws.req.Peer
		return true
	}
	ev, err := ws.await(time.Now().Add(ws.svc.cfg.AuthTimeout))
	var perr *protocolError
	switch {
	case errors.As(err, &perr):
		ws.refuse(websocket.StatusCode(perr.code), perr.reason)
		return false
	case err == nil && ev.op == opClose: // the client leaves before it said who it is
		ws.answerClose(ev.data)
		ws.conn.Close()
		return false
	case err != nil:
		ws.refuse(CloseForbidden, "auth message required")
		return false
	case ev.op == opText && !utf8.Valid(ev.data):
		ws.refuse(websocket.StatusInvalidFramePayloadData, "text message is not UTF-8")
		return false
	}
	m, err := parseClientMessage(ev.data)
	if ev.op != opText || err != nil || m.Type != "auth" || m.Token == "" {
		ws.refuse(CloseForbidden, "auth message required")
		return false
	}
	peer, err := ws.req.Authenticate(ctx, m.Token)
	switch {
	case errors.Is(err, ErrTokenExpired):
		ws.refuse(CloseTokenExpired, "token expired")
		return false
	case err != nil:
		ws.refuse(CloseForbidden, "invalid token")
		return false
	}
	ticket, err := ws.svc.Admit(peer.User, "ws")
	if err != nil {
		ws.refuse(CloseTryLater, err.Error())
		return false
	}
	ws.peer, ws.req.Ticket = peer, ticket
	return true
}

// await reads, waiting until deadline at most, up to the client's next data message or close
// frame, answering pings on the way; bytes after it stay in leftover. It serves the session
// before it is live, on the request's goroutine.
func (ws *wsSession) await(deadline time.Time) (wsEvent, error) {
	_ = ws.conn.SetReadDeadline(deadline)
	defer ws.conn.SetReadDeadline(time.Time{})
	buf := make([]byte, wsReadBuffer)
	for {
		pending := ws.leftover
		ws.leftover = nil
		if len(pending) == 0 {
			n, err := ws.conn.Read(buf)
			if n == 0 {
				if err == nil {
					err = io.ErrNoProgress
				}
				return wsEvent{}, err
			}
			pending = buf[:n]
		}
		for len(pending) > 0 {
			rest, ev, err := ws.nextEvent(pending)
			if err != nil {
				return wsEvent{}, err
			}
			pending = rest
			switch ev.op {
			case opPing:
				if err := ws.writeFrame(opPong, ev.data); err != nil && !errors.Is(err, errCloseSent) {
					return wsEvent{}, err
				}
			case opText, opBinary, opClose:
				ws.leftover = bytes.Clone(pending)
				return ev, nil
			}
		}
	}
}

// readBuffers are the readers' buffers, taken only while a reader runs: a socket's read
// escapes to the heap, and a fresh buffer for each pong of thousands of idle connections would
// be garbage the collector keeps room for.
var readBuffers = sync.Pool{New: func() any { return new([wsReadBuffer]byte) }}

// readAvailable reads what the socket has, then rearms the watch so that the next bytes start
// another reader.
func (ws *wsSession) readAvailable() {
	buf := readBuffers.Get().(*[wsReadBuffer]byte)
	defer readBuffers.Put(buf)
	for {
		n, err := readNow(ws.raw, buf[:])
		switch {
		case errors.Is(err, errWouldBlock):
			if ws.watch.Arm() != nil {
				ws.end()
			}
			return
		case err != nil || n == 0: // closed, or the peer went
			ws.end()
			return
		}
		if !ws.receive(buf[:n]) {
			return
		}
	}
}

// readForever reads the client until the connection ends, where the socket cannot rest.
func (ws *wsSession) readForever() {
	buf := make([]byte, wsReadBuffer)
	for {
		n, err := ws.conn.Read(buf)
		if n > 0 && !ws.receive(buf[:n]) {
			return
		}
		if err != nil {
			ws.end()
			return
		}
	}
}

// nextEvent parses p up to the end of the next message or control frame and returns the bytes
// after it; with no event, p ran out first and the parser keeps the incomplete frame.
func (ws *wsSession) nextEvent(p []byte) (rest []byte, ev wsEvent, err error) {
	if ws.parser == nil {
		ws.parser = &frameParser{}
	}
	n, ev, err := ws.parser.feed(p, maxClientMessage)
	if ws.parser.atRest() {
		ws.parser = nil
	}
	return p[n:], ev, err
}

// receive handles the client's bytes p. It reports false once the session is over, when the
// reader must stop.
func (ws *wsSession) receive(p []byte) bool {
	for len(p) > 0 {
		var ev wsEvent
		var err error
		p, ev, err = ws.nextEvent(p)
		var perr *protocolError
		if errors.As(err, &perr) {
			ws.fail(perr)
			return false
		}
		if ev.op != 0 && !ws.handle(ev) {
			return false
		}
	}
	return true
}

// handle acts on one message or control frame from the client; false means the session ended.
// Reading is what processes the peer's pongs and close frames. A text message that is not
// UTF-8 closes the session with 1007 (RFC 6455 §8.1).
func (ws *wsSession) handle(ev wsEvent) bool {
	switch ev.op {
	case opText:
		if !utf8.Valid(ev.data) {
			ws.close(websocket.StatusInvalidFramePayloadData, "text message is not UTF-8")
			return true // the peer's answer is still to be read
		}
		if m, err := parseClientMessage(ev.data); err == nil && m.Type == "ack" && m.Seq > 0 {
			ws.sub.Ack(m.Seq)
		}
	case opPing:
		if err := ws.writeFrame(opPong, ev.data); err != nil && !errors.Is(err, errCloseSent) {
			ws.end()
			return false
		}
	case opPong:
		ws.pong()
	case opClose: // the peer's answer to our close, or its own close
		ws.answerClose(ev.data)
		ws.end()
		return false
	}
	return true
}

// answerClose answers the peer's close frame with its code (RFC 6455 §5.5.1), or with 1002 or
// 1007 if the frame is malformed. After our own close frame it sends nothing.
func (ws *wsSession) answerClose(payload []byte) {
	code, err := parseClose(payload)
	var perr *protocolError
	var answer []byte
	switch {
	case errors.As(err, &perr):
		answer = closePayload(perr.code, perr.reason)
	case code != 0:
		answer = closePayload(code, "")
	}
	_ = ws.writeFrame(opClose, answer)
}

// fail ends a session whose client broke the protocol, telling it why.
func (ws *wsSession) fail(perr *protocolError) {
	_ = ws.writeFrame(opClose, closePayload(perr.code, perr.reason))
	ws.end()
}

// wake is the hub's signal that something is pending. At most one writer runs at a time; a
// wake that finds one running leaves the news for it (that is the coalescing).
func (ws *wsSession) wake() {
	ws.dirty.Store(true)
	if !ws.ready.Load() {
		return
	}
	if ws.writing.CompareAndSwap(false, true) {
		go ws.flush()
	} else {
		ws.svc.wsCoalesced.Inc()
	}
}

// flush writes the newest seq until nothing is pending, then exits. It writes only once the
// socket has drained (see drainGate); until then the news stays in the hub and a timer holds
// the writer's role, looking again until the socket drains or the peer counts as stalled.
func (ws *wsSession) flush() {
	for {
		ws.dirty.Store(false)
		if ws.sub.Pending() {
			wait, stalled := ws.gate.check(ws.svc.cfg.WriteTimeout)
			switch {
			case stalled:
				ws.svc.observeStalled("ws")
				ws.close(CloseStalled, "reader stalled")
				return // the role stays taken: nothing more is written
			case wait > 0:
				time.AfterFunc(wait, ws.flush)
				return
			}
			if seq, since, ok := ws.sub.Next(); ok {
				if !ws.write(changesFrame(seq)) {
					ws.writing.Store(false)
					return
				}
				ws.svc.observeSent("ws", since)
			}
		}
		ws.writing.Store(false)
		if !ws.dirty.Load() || !ws.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

// write sends one text message; a peer that cannot take it within WriteTimeout is dropped.
// After the close frame nothing more is sent, and the session waits for the peer's answer.
func (ws *wsSession) write(frame []byte) bool {
	err := ws.writeFrame(opText, frame)
	if err != nil && !errors.Is(err, errCloseSent) {
		ws.end()
	}
	return err == nil
}

// writeFrame sends one frame within WriteTimeout. Frames are tens of bytes, written with one
// system call from a buffer that lives as long as the call.
func (ws *wsSession) writeFrame(op byte, payload []byte) error {
	frame := appendFrame(make([]byte, 0, 4+len(payload)), op, payload)
	ws.writeMu.Lock()
	defer ws.writeMu.Unlock()
	if ws.closeSent {
		return errCloseSent
	}
	if op == opClose {
		ws.closeSent = true
	}
	_ = ws.conn.SetWriteDeadline(time.Now().Add(ws.svc.cfg.WriteTimeout))
	_, err := ws.conn.Write(frame)
	return err
}

// untilNextTick is the time to the next heartbeat, or to the token's expiry if sooner: one
// timer serves both.
func (ws *wsSession) untilNextTick() time.Duration {
	d := ws.svc.cfg.Heartbeat
	if !ws.peer.Expires.IsZero() {
		d = min(d, time.Until(ws.peer.Expires))
	}
	return d
}

// setTimer sets the session's timer to fire after d. The caller holds timerMu.
func (ws *wsSession) setTimer(d time.Duration) {
	if ws.over || ws.timer == nil {
		return
	}
	ws.due = time.Now().Add(d)
	ws.timer.Reset(d)
}

// tick is the session's timer. It ends a session whose peer left a ping or a close frame
// unanswered, closes it with 4001 once the token has expired (the connection never outlives
// its token), and otherwise pings the peer, which has PongTimeout to answer. It runs on a
// timer, not a goroutine of its own, so an idle connection holds no goroutine for it.
func (ws *wsSession) tick() {
	ws.timerMu.Lock()
	if ws.over {
		ws.timerMu.Unlock()
		return
	}
	if wait := time.Until(ws.due); wait > 0 { // a firing the reader's pong overtook
		ws.timer.Reset(wait)
		ws.timerMu.Unlock()
		return
	}
	closing, pingOut := ws.closing, ws.pingOut
	expired := !ws.peer.Expires.IsZero() && !time.Now().Before(ws.peer.Expires)
	if !closing && !pingOut && !expired {
		ws.pingOut = true
		ws.setTimer(ws.svc.cfg.PongTimeout)
	}
	ws.timerMu.Unlock()
	switch {
	case closing, pingOut:
		ws.end()
	case expired:
		ws.close(CloseTokenExpired, "token expired")
	default:
		if err := ws.writeFrame(opPing, nil); err != nil && !errors.Is(err, errCloseSent) {
			ws.end()
		}
	}
}

// pong records the peer's answer to a ping; the next heartbeat is due a full interval later.
func (ws *wsSession) pong() {
	ws.timerMu.Lock()
	defer ws.timerMu.Unlock()
	if ws.pingOut && !ws.closing {
		ws.pingOut = false
		ws.setTimer(ws.untilNextTick())
	}
}

// close starts the closing handshake with a close code, once: the session ends when the peer
// answers or after closeWait. Timers and shutdown must not wait for the frame to be written, so
// it goes from a goroutine of its own.
func (ws *wsSession) close(code websocket.StatusCode, reason string) {
	ws.timerMu.Lock()
	if ws.closing || ws.over {
		ws.timerMu.Unlock()
		return
	}
	ws.closing = true
	ws.setTimer(closeWait)
	ws.timerMu.Unlock()
	go func() {
		if err := ws.writeFrame(opClose, closePayload(uint16(code), reason)); err != nil && !errors.Is(err, errCloseSent) {
			ws.end()
		}
	}()
}

// refuse closes a session that never got going: no reader runs, so the session's goroutine
// reads the peer's answer itself, within closeWait, and then closes the connection.
func (ws *wsSession) refuse(code websocket.StatusCode, reason string) {
	defer ws.conn.Close()
	if ws.writeFrame(opClose, closePayload(uint16(code), reason)) != nil {
		return
	}
	deadline := time.Now().Add(closeWait)
	for {
		ev, err := ws.await(deadline)
		if err != nil || ev.op == opClose {
			return
		}
	}
}

// end releases what the session holds and closes the socket, once, whichever of reader,
// writer, timer or shutdown sees the connection end first.
func (ws *wsSession) end() {
	ws.endOnce.Do(func() {
		if ws.watch != nil {
			ws.watch.Stop() // before the socket closes and its descriptor can be reused
		}
		ws.timerMu.Lock()
		ws.over = true
		if ws.timer != nil {
			ws.timer.Stop()
		}
		ws.timerMu.Unlock()
		if ws.sub != nil {
			ws.sub.Close()
		}
		ws.req.Ticket.Release()
		ws.conn.Close()
	})
}
