package push

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsesync/pulsesync/internal/pushtest"
)

// clientFrame is a masked frame as a client sends it.
func clientFrame(fin bool, opcode byte, payload []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	mask := []byte{1, 2, 3, 4}
	f = append(f, mask...)
	for i, c := range payload {
		f = append(f, c^mask[i%4])
	}
	return f
}

// parseAll feeds stream to a parser in chunks of chunk bytes, as a session's reader would, and
// returns the events in order, or the first protocol error.
func parseAll(stream []byte, chunk int) (events []wsEvent, atRest bool, err error) {
	var p frameParser
	for start := 0; start < len(stream); start += chunk {
		b := stream[start:min(start+chunk, len(stream))]
		for len(b) > 0 {
			n, ev, err := p.feed(b, maxClientMessage)
			if err != nil {
				return events, false, err
			}
			b = b[n:]
			if ev.op != 0 {
				events = append(events, ev)
			}
		}
	}
	return events, p.atRest(), nil
}

func TestFrameParser_AssemblesMessagesInPiecesOfAnySize(t *testing.T) {
	ack := []byte(`{"type":"ack","seq":2}`)
	long := bytes.Repeat([]byte("x"), 300) // a 16-bit length
	stream := bytes.Join([][]byte{
		clientFrame(true, opText, long),
		clientFrame(false, opText, ack[:8]),
		clientFrame(true, opPing, []byte("p")), // control frames may come between fragments
		clientFrame(false, opContinuation, ack[8:14]),
		clientFrame(true, opContinuation, ack[14:]),
		clientFrame(true, opPong, nil),
		clientFrame(true, opBinary, nil),
	}, nil)
	want := []wsEvent{{opText, long}, {opPing, []byte("p")}, {opText, ack}, {opPong, nil}, {opBinary, nil}}
	for _, chunk := range []int{1, 3, 7, len(stream)} {
		events, atRest, err := parseAll(stream, chunk)
		if err != nil {
			t.Fatalf("chunks of %d: %v", chunk, err)
		}
		if len(events) != len(want) {
			t.Fatalf("chunks of %d: %d events, want %d", chunk, len(events), len(want))
		}
		for i, ev := range events {
			if ev.op != want[i].op || !bytes.Equal(ev.data, want[i].data) {
				t.Fatalf("chunks of %d: event %d = %#x %q, want %#x %q", chunk, i, ev.op, ev.data, want[i].op, want[i].data)
			}
		}
		if !atRest {
			t.Fatalf("chunks of %d: parser not at rest after whole messages", chunk)
		}
	}
	// In the middle of a fragmented message the parser holds it.
	if _, atRest, _ := parseAll(clientFrame(false, opText, ack), 1<<10); atRest {
		t.Fatal("at rest inside a fragmented message")
	}
}

func TestFrameParser_RejectsWhatAClientMustNotSend(t *testing.T) {
	unmasked := clientFrame(true, opText, []byte("hi"))
	unmasked[1] &^= 0x80
	unmasked = append(unmasked[:2], []byte("hi")...)
	cases := []struct {
		name   string
		stream []byte
		code   uint16
	}{
		{"unmasked frame", unmasked, closeProtocolError},
		{"reserved bit", append([]byte{0xc1}, clientFrame(true, opText, nil)[1:]...), closeProtocolError},
		{"unknown opcode", clientFrame(true, 0x3, nil), closeProtocolError},
		{"fragmented ping", clientFrame(false, opPing, nil), closeProtocolError},
		{"long ping", clientFrame(true, opPing, make([]byte, 126)), closeProtocolError},
		{"continuation outside a message", clientFrame(true, opContinuation, []byte("x")), closeProtocolError},
		{"message inside a message", append(clientFrame(false, opText, []byte("a")), clientFrame(true, opText, []byte("b"))...), closeProtocolError},
		{"message too big", clientFrame(true, opText, make([]byte, maxClientMessage+1)), closeTooBig},
		{"fragments too big", append(clientFrame(false, opText, make([]byte, maxClientMessage)), clientFrame(true, opContinuation, []byte("x"))...), closeTooBig},
	}
	for _, tc := range cases {
		_, _, err := parseAll(tc.stream, 5)
		perr, ok := err.(*protocolError)
		if !ok || perr.code != tc.code {
			t.Errorf("%s: %v, want a protocol error with code %d", tc.name, err, tc.code)
		}
	}
}

func TestParseClose(t *testing.T) {
	for _, tc := range []struct {
		payload []byte
		code    uint16
		errCode uint16
	}{
		{nil, 0, 0},
		{closePayload(1000, "bye"), 1000, 0},
		{closePayload(4001, ""), 4001, 0},
		{[]byte{0x03}, 0, closeProtocolError},
		{closePayload(1005, ""), 0, closeProtocolError},
		{closePayload(999, ""), 0, closeProtocolError},
		{append(closePayload(1000, ""), 0xff), 0, closeInvalidData},
	} {
		code, err := parseClose(tc.payload)
		perr, _ := err.(*protocolError)
		switch {
		case tc.errCode != 0 && (perr == nil || perr.code != tc.errCode):
			t.Errorf("close payload %x: %v, want protocol error %d", tc.payload, err, tc.errCode)
		case tc.errCode == 0 && (err != nil || code != tc.code):
			t.Errorf("close payload %x: %d, %v; want %d", tc.payload, code, err, tc.code)
		}
	}
}

// rawWS is a WebSocket client on a bare TCP connection: it sends exactly the frames a test
// gives and reads the server's frames one by one.
type rawWS struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, s *testServer, path string) *rawWS {
	t.Helper()
	conn, req := sendRequest(t, s, path, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
		"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}, 0)
	c := &rawWS{t: t, conn: conn, r: bufio.NewReader(conn)}
	_ = conn.SetReadDeadline(time.Now().Add(pushtest.Wait))
	resp, err := http.ReadResponse(c.r, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("upgrade: %d, accept %q; want 101 and RFC 6455's sample answer", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return c
}

func (c *rawWS) send(frames ...[]byte) {
	c.t.Helper()
	if _, err := c.conn.Write(bytes.Join(frames, nil)); err != nil {
		c.t.Fatal(err)
	}
}

// next reads the server's next frame, which must be unmasked and unfragmented.
func (c *rawWS) next() (op byte, payload []byte) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(pushtest.Wait))
	var h [2]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	if h[0]&0x80 == 0 || h[1]&0x80 != 0 || h[1]&0x7f > 125 {
		c.t.Fatalf("frame header %x: want a final, unmasked, short frame", h)
	}
	payload = make([]byte, h[1]&0x7f)
	if _, err := io.ReadFull(c.r, payload); err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return h[0] & 0x0f, payload
}

// expectClose reads up to the server's close frame, which must carry code, and then the end
// of the connection.
func (c *rawWS) expectClose(code uint16) {
	c.t.Helper()
	for {
		op, payload := c.next()
		if op != opClose {
			continue
		}
		if len(payload) < 2 || binary.BigEndian.Uint16(payload) != code {
			c.t.Fatalf("close frame %x, want code %d", payload, code)
		}
		break
	}
	c.send(clientFrame(true, opClose, closePayload(code, "")))
	if _, err := c.r.ReadByte(); err != io.EOF {
		c.t.Fatalf("after the close handshake: %v, want the connection closed", err)
	}
}

// TestWS_ControlFrames: the server answers a ping with a pong carrying its payload, also in the
// middle of a fragmented message, and the client's close with the same code, then hangs up.
func TestWS_ControlFrames(t *testing.T) {
	s := newTestServer(t, Config{}, time.Time{})
	c := dialRaw(t, s, "/ws")
	if op, f := c.next(); op != opText || !strings.Contains(string(f), `"ready"`) {
		t.Fatalf("first frame %#x %q, want ready", op, f)
	}
	c.send(clientFrame(false, opText, []byte(`{"type":"ack",`)), clientFrame(true, opPing, []byte("hello")))
	if op, payload := c.next(); op != opPong || string(payload) != "hello" {
		t.Fatalf("answer to ping: %#x %q, want pong \"hello\"", op, payload)
	}
	c.send(clientFrame(true, opContinuation, []byte(`"seq":1}`)), clientFrame(true, opClose, closePayload(1001, "going away")))
	op, payload := c.next()
	if op != opClose || binary.BigEndian.Uint16(payload) != 1001 {
		t.Fatalf("answer to close: %#x %x, want close 1001", op, payload)
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("after the close: %v, want the connection closed", err)
	}
	pushtest.WaitFor(t, func() bool { return s.hub.Connections() == 0 })
}

// TestWS_ProtocolErrorsClose: a frame a client must not send closes the session with 1002, a
// message over the limit with 1009, and the session ends.
func TestWS_ProtocolErrorsClose(t *testing.T) {
	s := newTestServer(t, Config{}, time.Time{})
	unmasked := []byte{0x81, 0x02, 'h', 'i'}
	for _, tc := range []struct {
		name  string
		frame []byte
		code  uint16
	}{{"unmasked", unmasked, closeProtocolError}, {"too big", clientFrame(true, opText, make([]byte, maxClientMessage+1)), closeTooBig}} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, s, "/ws")
			c.next() // ready
			c.send(tc.frame)
			op, payload := c.next()
			if op != opClose || binary.BigEndian.Uint16(payload) != tc.code {
				t.Fatalf("after the bad frame: %#x %x, want close %d", op, payload, tc.code)
			}
			pushtest.WaitFor(t, func() bool { return s.hub.Connections() == 0 })
		})
	}
}

// TestWS_HeartbeatDropsASilentPeer: a peer that answers no ping is dropped PongTimeout after
// the ping, and one that answers stays through several heartbeats.
func TestWS_HeartbeatDropsASilentPeer(t *testing.T) {
	s := newTestServer(t, Config{Heartbeat: 50 * time.Millisecond, PongTimeout: 200 * time.Millisecond}, time.Time{})
	var pings atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), pushtest.Wait)
	defer cancel()
	alive, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/ws", &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer alive.CloseNow()
	go func() {
		for {
			if _, _, err := alive.Read(ctx); err != nil {
				return
			}
		}
	}()
	silent := dialRaw(t, s, "/ws")
	silent.next() // ready
	if op, _ := silent.next(); op != opPing {
		t.Fatalf("frame %#x, want a ping", op)
	}
	if _, err := io.ReadAll(silent.r); err != nil {
		t.Fatalf("silent peer: %v, want the connection closed", err)
	}
	pushtest.WaitFor(t, func() bool { return pings.Load() >= 5 })
	if n := s.hub.Connections(); n != 1 {
		t.Fatalf("%d sessions after the silent peer's drop, want the answering one", n)
	}
}

// TestWS_UpgradeRefusals: requests that are not WebSocket upgrades get HTTP errors and leave
// their ticket free.
func TestWS_UpgradeRefusals(t *testing.T) {
	s := newTestServer(t, Config{MaxPerUser: 1}, time.Time{})
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"plain GET", nil, http.StatusUpgradeRequired},
		{"old version", map[string]string{"Connection": "keep-alive, Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "8", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, http.StatusBadRequest},
		{"short key", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "c2hvcnQ="}, http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/ws", nil)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	// The one place alice may hold is free again.
	dialRaw(t, s, "/ws").next()
}

// FuzzFrameParser feeds arbitrary client bytes to the frame parser whole and byte by byte: it
// must not panic, must never hand out a message over the limit, and must see the same events
// and the same verdict however the bytes are split.
func FuzzFrameParser(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte(`{"type":"ack","seq":1}`)))
	f.Add(append(clientFrame(false, opText, []byte("a")), clientFrame(true, opContinuation, []byte("b"))...))
	f.Add(clientFrame(true, opClose, closePayload(1000, "bye")))
	f.Add([]byte{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, stream []byte) {
		whole, wholeRest, wholeErr := parseAll(stream, len(stream)+1)
		bytewise, bytewiseRest, bytewiseErr := parseAll(stream, 1)
		if (wholeErr == nil) != (bytewiseErr == nil) || len(whole) != len(bytewise) || wholeRest != bytewiseRest {
			t.Fatalf("whole: %d events, %v; byte by byte: %d events, %v", len(whole), wholeErr, len(bytewise), bytewiseErr)
		}
		for i, ev := range whole {
			if ev.op != bytewise[i].op || !bytes.Equal(ev.data, bytewise[i].data) {
				t.Fatalf("event %d differs: %#x %q and %#x %q", i, ev.op, ev.data, bytewise[i].op, bytewise[i].data)
			}
			if len(ev.data) > maxClientMessage {
				t.Fatalf("event %d of %d bytes, over the limit", i, len(ev.data))
			}
		}
	})
}

// TestWS_CloseBeforeAuth: a client that closes instead of authenticating gets its close
// answered at once, not a refusal after the auth timeout.
func TestWS_CloseBeforeAuth(t *testing.T) {
	s := newTestServer(t, Config{AuthTimeout: time.Minute}, time.Time{})
	c := dialRaw(t, s, "/ws-auth")
	c.send(clientFrame(true, opClose, closePayload(1001, "")))
	if op, payload := c.next(); op != opClose || binary.BigEndian.Uint16(payload) != 1001 {
		t.Fatalf("answer to close: %#x %x, want close 1001", op, payload)
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("after the close: %v, want the connection closed", err)
	}
}
