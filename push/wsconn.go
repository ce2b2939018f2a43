package push

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// The server side of RFC 6455, as much as push sessions need: the opening handshake, a
// client's frames assembled into messages by a parser that keeps no buffer between messages,
// and unfragmented frames out. No extensions (no compression) and no subprotocols are
// negotiated. A general-purpose library keeps per connection a reader, a writer, buffers both
// ways and channel-based locks, about 2 KB, for sockets that carry a few tens of bytes a minute;
// here an idle connection keeps its session and nothing else.

// Opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// Close codes the parser and the session send besides the push protocol's own.
const (
	closeProtocolError = 1002
	closeInvalidData   = 1007 // a text message or close reason that is not UTF-8
	closeTooBig        = 1009
	maxControlPayload  = 125
	maxCloseReason     = maxControlPayload - 2
)

// wsGUID is what the handshake appends to the client's key (RFC 6455 §1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// upgrade completes a WebSocket opening handshake on r and takes the connection over from
// net/http. It returns the connection and any bytes the client sent after its request. A
// request that is not a valid upgrade is answered with an HTTP error, and upgrade returns nil.
func upgrade(w http.ResponseWriter, r *http.Request) (net.Conn, []byte) {
	key, status, problem := checkUpgrade(r)
	if problem != "" {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "websocket")
		}
		if status == http.StatusBadRequest {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, "WebSocket handshake: "+problem, status)
		return nil, nil
	}
	h := w.Header()
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Accept", acceptKey(key))
	w.WriteHeader(http.StatusSwitchingProtocols)
	// Hijack sends the response; the connection is ours from here on.
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "WebSocket handshake: "+err.Error(), http.StatusInternalServerError)
		return nil, nil
	}
	// Bytes the client sent after its request sit in net/http's reader, which goes: they are
	// read before the socket's.
	var leftover []byte
	if n := brw.Reader.Buffered(); n > 0 {
		pending, _ := brw.Reader.Peek(n)
		leftover = bytes.Clone(pending)
	}
	// The server's read and write deadlines were for the request; the session sets its own.
	_ = conn.SetDeadline(time.Time{})
	// The session's pings watch the peer; TCP keep-alive probes (net/http enables them every
	// 15 s) would only add a packet and its answer per idle socket and heartbeat.
	// The listener may wrap the socket (per-address limits), so ask for the method, not the type.
	if ka, ok := conn.(interface{ SetKeepAlive(bool) error }); ok {
		_ = ka.SetKeepAlive(false)
	}
	return conn, leftover
}

// checkUpgrade returns the client's key, or the status and reason to refuse the request with.
func checkUpgrade(r *http.Request) (key string, status int, problem string) {
	switch {
	case !r.ProtoAtLeast(1, 1):
		return "", http.StatusUpgradeRequired, "the request must be HTTP/1.1 or later"
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return "", http.StatusUpgradeRequired, `the Connection header must contain "Upgrade"`
	case !headerHasToken(r.Header, "Upgrade", "websocket"):
		return "", http.StatusUpgradeRequired, `the Upgrade header must contain "websocket"`
	case r.Method != http.MethodGet:
		return "", http.StatusMethodNotAllowed, "the method must be GET"
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return "", http.StatusBadRequest, "Sec-WebSocket-Version must be 13"
	}
	key = r.Header.Get("Sec-WebSocket-Key")
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
		return "", http.StatusBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64"
	}
	return key, 0, ""
}

// headerHasToken reports whether a comma-separated header of h contains token, in any case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// acceptKey is the Sec-WebSocket-Accept answer to key.
func acceptKey(key string) string {
	sum := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// appendFrame appends an unmasked, unfragmented server frame.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// closePayload is a close frame's body: the code and as much of reason as fits.
func closePayload(code uint16, reason string) []byte {
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason]
	}
	return append(binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), code), reason...)
}

// protocolError is a client's violation of RFC 6455: the session fails with its close code.
type protocolError struct {
	code   uint16
	reason string
}

func (e *protocolError) Error() string { return e.reason }

// wsEvent is a complete message or control frame from the client; op 0 is none.
type wsEvent struct {
	op   byte
	data []byte
}

// frameParser assembles a client's frames into messages (RFC 6455 §5). It is fed whatever
// bytes have arrived, in pieces of any size, and checks what the protocol requires of a client:
// masked frames, no reserved bits or opcodes, control frames whole and short, continuations
// only inside a fragmented message, and messages no longer than limit. A session holds one only
// while a frame or message is incomplete (see wsSession.nextEvent).
type frameParser struct {
	header    [14]byte // at most 2 + 8 length + 4 mask bytes
	headerLen int
	inPayload bool // the header is complete and payload bytes are due
	op        byte
	fin       bool
	mask      [4]byte
	maskPos   int
	left      uint64 // payload bytes of the frame still to come
	control   []byte // the control frame's payload so far
	msgOp     byte   // opcode of the data message being assembled; 0 between messages
	msg       []byte
}

// atRest reports whether the parser stands between two messages, holding nothing.
func (p *frameParser) atRest() bool {
	return p.headerLen == 0 && !p.inPayload && p.msgOp == 0
}

// feed consumes b up to the end of the next complete message or control frame and returns the
// bytes it consumed and that event, if one completed. The event's data is the caller's.
func (p *frameParser) feed(b []byte, limit int) (n int, ev wsEvent, err error) {
	for n < len(b) {
		if !p.inPayload {
			p.header[p.headerLen] = b[n]
			p.headerLen++
			n++
			if p.headerLen < 2 || p.headerLen < frameHeaderSize(p.header[1]) {
				continue
			}
			if err := p.beginFrame(limit); err != nil {
				return n, wsEvent{}, err
			}
		} else {
			k := int(min(uint64(len(b)-n), p.left))
			for _, c := range b[n : n+k] {
				c ^= p.mask[p.maskPos&3]
				p.maskPos++
				if p.op >= opClose {
					p.control = append(p.control, c)
				} else {
					p.msg = append(p.msg, c)
				}
			}
			n += k
			p.left -= uint64(k)
		}
		if p.left == 0 {
			if ev := p.endFrame(); ev.op != 0 {
				return n, ev, nil
			}
		}
	}
	return n, wsEvent{}, nil
}

// frameHeaderSize is the size of a client frame's header given its second byte.
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

// beginFrame checks the header just completed and prepares for the payload.
func (p *frameParser) beginFrame(limit int) error {
	h := p.header[:p.headerLen]
	p.fin, p.op = h[0]&0x80 != 0, h[0]&0x0f
	var length uint64
	switch l := h[1] & 0x7f; l {
	case 126:
		length = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		length = binary.BigEndian.Uint64(h[2:])
	default:
		length = uint64(l)
	}
	switch {
	case h[0]&0x70 != 0:
		return &protocolError{closeProtocolError, "reserved bits set without an extension"}
	case h[1]&0x80 == 0:
		return &protocolError{closeProtocolError, "client frames must be masked"}
	case length > 1<<63-1:
		return &protocolError{closeProtocolError, "frame length out of range"}
	}
	switch p.op {
	case opClose, opPing, opPong:
		if !p.fin || length > maxControlPayload {
			return &protocolError{closeProtocolError, "control frames must be whole and at most 125 bytes"}
		}
		p.control = make([]byte, 0, length)
	case opContinuation:
		if p.msgOp == 0 {
			return &protocolError{closeProtocolError, "continuation frame outside a fragmented message"}
		}
	case opText, opBinary:
		if p.msgOp != 0 {
			return &protocolError{closeProtocolError, "new message inside a fragmented one"}
		}
		p.msgOp = p.op
	default:
		return &protocolError{closeProtocolError, "unknown opcode"}
	}
	if p.op < opClose {
		if uint64(len(p.msg))+length > uint64(limit) {
			return &protocolError{closeTooBig, "message too big"}
		}
		if p.msg == nil {
			p.msg = make([]byte, 0, length)
		}
	}
	copy(p.mask[:], h[len(h)-4:])
	p.maskPos, p.left, p.inPayload, p.headerLen = 0, length, true, 0
	return nil
}

// endFrame closes the frame whose payload is complete and returns the event it completes.
func (p *frameParser) endFrame() wsEvent {
	p.inPayload = false
	if p.op >= opClose {
		ev := wsEvent{op: p.op, data: p.control}
		p.control = nil
		return ev
	}
	if !p.fin {
		return wsEvent{}
	}
	ev := wsEvent{op: p.msgOp, data: p.msg}
	p.msgOp, p.msg = 0, nil
	return ev
}

// parseClose returns the code and reason of a client's close frame, 0 for an empty one, or
// the protocol error its payload is (RFC 6455 §5.5.1, §7.4).
func parseClose(payload []byte) (code uint16, err error) {
	if len(payload) == 0 {
		return 0, nil
	}
	if len(payload) == 1 {
		return 0, &protocolError{closeProtocolError, "close frame with a one-byte payload"}
	}
	code = binary.BigEndian.Uint16(payload)
	if !validCloseCode(code) {
		return 0, &protocolError{closeProtocolError, "invalid close code"}
	}
	if !utf8.Valid(payload[2:]) {
		return 0, &protocolError{closeInvalidData, "close reason is not UTF-8"}
	}
	return code, nil
}

// validCloseCode reports whether a peer may send code in a close frame.
func validCloseCode(code uint16) bool {
	switch {
	case code >= 3000 && code <= 4999:
		return true
	case code < 1000 || code > 1014:
		return false
	}
	return code != 1004 && code != 1005 && code != 1006
}

// errCloseSent is what a write returns once the session's close frame has gone: nothing may
// follow it (RFC 6455 §5.5.1).
var errCloseSent = errors.New("websocket close frame already sent")
