package push

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
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

// maxClientMessage bounds what a client may send: an auth message with a large token.
const maxClientMessage = 16 << 10

// ServeWS upgrades the request to a WebSocket and runs the session on it until the peer goes,
// its token expires or the service shuts down. Upgrade failures are answered by the websocket
// library with an HTTP error.
func (s *Service) ServeWS(w http.ResponseWriter, r *http.Request, req WSRequest) {
	var socket *restingConn
	conn, err := websocket.Accept(smallBuffers{w, &socket}, r, &websocket.AcceptOptions{
		// Origin checks guard cookie-authenticated sockets against cross-site use. These
		// sockets authenticate with an explicit token only, so any page may open one.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		if req.Ticket != nil {
			req.Ticket.Release()
		}
		return
	}
	conn.SetReadLimit(maxClientMessage)
	ws := &wsSession{svc: s, conn: conn, socket: socket, req: req, gate: newDrainGate(socket.Conn)}
	// The session's context is not the request's: that one keeps the request, its headers and
	// the router's state alive for as long as the connection lasts. The request's goroutine,
	// deep in the router's frames, ends when start returns.
	if ws.start(context.Background()) {
		ws.listen()
	}
}

// wsSession is one WebSocket. No goroutine waits on an idle one: a reader runs while the
// client's bytes arrive (see listen), a writer while there is something to send, and a timer
// brings the heartbeat and the token's expiry.
type wsSession struct {
	svc    *Service
	conn   *websocket.Conn
	socket *restingConn
	req    WSRequest
	peer   Peer
	// Set up by start before the session can be reached from another goroutine:
	sub   *Subscription
	watch *watch      // nil when the socket cannot rest: then one goroutine reads for its life
	timer *time.Timer // the next heartbeat, or the token's expiry if that comes first
	gate  drainGate   // the writer's: at most one notification in flight

	writing atomic.Bool // a writer goroutine, or a timer waiting for the socket to drain, holds the writer's role
	dirty   atomic.Bool // something arrived since the writer last looked
	ready   atomic.Bool // the ready frame is out: notifications may follow

	closeOnce sync.Once
	endOnce   sync.Once
}

// start authenticates and subscribes the session and sends its ready frame. It reports whether
// the session is live; if not, everything it took is released and the connection is closed.
func (ws *wsSession) start(ctx context.Context) (live bool) {
	if !ws.authenticate(ctx) {
		ws.conn.CloseNow()
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
	if ws.svc.readiness != nil && ws.socket.canRest() {
		ws.watch = ws.svc.readiness.Watch(ws.socket.raw, ws.readAvailable)
		ws.socket.mayRest.Store(true) // until a close handshake begins
	}
	ws.timer = time.AfterFunc(time.Duration(math.MaxInt64), ws.tick)
	if !ws.write(ctx, readyFrame(seq, ws.svc.cfg.Heartbeat)) {
		return false
	}
	ws.timer.Reset(ws.untilNextTick())
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
// each time bytes arrive and ends once the client is between messages with nothing more sent;
// elsewhere one goroutine reads for the connection's life.
func (ws *wsSession) listen() {
	if ws.watch != nil {
		if ws.watch.Arm() == nil {
			return
		}
		// The epoll set refused the socket (past fs.epoll.max_user_watches, say): this session
		// keeps a reader, like one on a platform without readiness polling.
		ws.socket.mayRest.Store(false)
	}
	go ws.readAvailable()
}

// authenticate admits the peer: from the header (already verified and admitted), or from a
// first {"type":"auth"} message within AuthTimeout.
func (ws *wsSession) authenticate(ctx context.Context) bool {
	if ws.req.Peer != nil {
		ws.peer = *ws.req.Peer
		return true
	}
	authCtx, cancel := context.WithTimeout(ctx, ws.svc.cfg.AuthTimeout)
	defer cancel()
	typ, data, err := ws.conn.Read(authCtx)
	if err != nil {
		ws.refuse(CloseForbidden, "auth message required")
		return false
	}
	if typ == websocket.MessageText && !utf8.Valid(data) {
		ws.refuse(websocket.StatusInvalidFramePayloadData, "text message is not UTF-8")
		return false
	}
	m, err := parseClientMessage(data)
	if typ != websocket.MessageText || err != nil || m.Type != "auth" || m.Token == "" {
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

// readAvailable reads the client's messages until the client rests between messages (then the
// watch brings the next bytes) or the connection ends (then the session ends). Reading is also
// what processes the peer's pongs and close frames. A text message that is not UTF-8 closes
// the session with 1007 (RFC 6455 §8.1).
func (ws *wsSession) readAvailable() {
	for {
		typ, data, err := ws.conn.Read(context.Background())
		if errors.Is(err, errResting) {
			if ws.watch.Arm() != nil {
				ws.end()
			}
			return
		}
		if err != nil {
			ws.end()
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		if !utf8.Valid(data) {
			ws.close(websocket.StatusInvalidFramePayloadData, "text message is not UTF-8")
			return
		}
		if m, err := parseClientMessage(data); err == nil && m.Type == "ack" && m.Seq > 0 {
			ws.sub.Ack(m.Seq)
		}
	}
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
				if !ws.write(context.Background(), changesFrame(seq)) {
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

// write sends one text frame within WriteTimeout; a peer that cannot take it is dropped.
func (ws *wsSession) write(ctx context.Context, frame []byte) bool {
	ctx, cancel := context.WithTimeout(ctx, ws.svc.cfg.WriteTimeout)
	defer cancel()
	if err := ws.conn.Write(ctx, websocket.MessageText, frame); err != nil {
		ws.end()
		return false
	}
	return true
}

// untilNextTick is the time to the next heartbeat, or to the token's expiry if sooner: one
// timer serves both, a few hundred bytes less per idle connection than two.
func (ws *wsSession) untilNextTick() time.Duration {
	d := ws.svc.cfg.Heartbeat
	if !ws.peer.Expires.IsZero() {
		d = min(d, time.Until(ws.peer.Expires))
	}
	return d
}

// tick closes the session with 4001 once the token has expired (the connection never outlives
// its token), and otherwise pings the peer, dropping it if no pong comes within PongTimeout.
// It runs on a timer, not a goroutine of its own, so an idle connection holds no goroutine for it.
func (ws *wsSession) tick() {
	if !ws.peer.Expires.IsZero() && !time.Now().Before(ws.peer.Expires) {
		ws.close(CloseTokenExpired, "token expired")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ws.svc.cfg.PongTimeout)
	defer cancel()
	if err := ws.conn.Ping(ctx); err != nil {
		ws.end()
		return
	}
	ws.timer.Reset(ws.untilNextTick())
}

// close ends the session with a close code, once. Close waits for the peer's answering close
// frame (at most a few seconds), so timers and shutdown must not wait for it; while it waits,
// reads wait for bytes rather than rest, so the answer is read.
func (ws *wsSession) close(code websocket.StatusCode, reason string) {
	ws.closeOnce.Do(func() {
		ws.socket.mayRest.Store(false)
		go func() {
			_ = ws.conn.Close(code, reason)
			ws.end()
		}()
	})
}

// refuse closes a session that never got going; no reader runs, so Close itself reads the
// peer's answer, and the session's goroutine may wait for it.
func (ws *wsSession) refuse(code websocket.StatusCode, reason string) {
	ws.closeOnce.Do(func() {
		ws.socket.mayRest.Store(false)
		_ = ws.conn.Close(code, reason)
	})
}

// end releases what the session holds and closes the socket, once, whichever of reader,
// writer, timer or shutdown sees the connection end first.
func (ws *wsSession) end() {
	ws.endOnce.Do(func() {
		if ws.watch != nil {
			ws.watch.Stop() // before the socket closes and its descriptor can be reused
		}
		ws.timer.Stop()
		ws.sub.Close()
		ws.req.Ticket.Release()
		ws.conn.CloseNow()
	})
}
