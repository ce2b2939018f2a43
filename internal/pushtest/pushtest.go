// Package pushtest is a client of pulsesync's push channels for tests: WebSocket and
// Server-Sent-Events connections that read the protocol's frames with deadlines.
package pushtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Wait is how long a read waits for a frame before the test fails: generous, because the machine
// is shared; the tests assert what arrives, not how fast.
const Wait = 10 * time.Second

// Frame is one message of the push protocol.
type Frame struct {
	Type       string `json:"type"`
	Seq        int64  `json:"seq"`
	HeartbeatS int    `json:"heartbeat_s"`
	ID         string `json:"-"` // SSE only: the event's id
}

// WS is a WebSocket connection to /sync/ws.
type WS struct {
	t    testing.TB
	Conn *websocket.Conn
}

// Dial opens /sync/ws?<query> on baseURL (http://…), with the token in the Authorization header
// unless token is "". It fails the test if the upgrade fails; DialErr returns that error instead.
func Dial(t testing.TB, baseURL, query, token string) *WS {
	t.Helper()
	ws, _, err := DialErr(t, baseURL, query, token)
	if err != nil {
		t.Fatalf("dial /sync/ws?%s: %v", query, err)
	}
	return ws
}

// DialErr is Dial reporting the failed upgrade's response and error.
func DialErr(t testing.TB, baseURL, query, token string) (*WS, *http.Response, error) {
	t.Helper()
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	url := "ws" + strings.TrimPrefix(baseURL, "http") + "/sync/ws?" + query
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { conn.CloseNow() })
	return &WS{t: t, Conn: conn}, resp, nil
}

// Send writes one text message.
func (w *WS) Send(v any) {
	w.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	if err := w.Conn.Write(ctx, websocket.MessageText, data); err != nil {
		w.t.Fatalf("send %s: %v", data, err)
	}
}

// Read returns the next frame, failing the test if none comes within Wait.
func (w *WS) Read() Frame {
	w.t.Helper()
	f, err := w.ReadWithin(Wait)
	if err != nil {
		w.t.Fatalf("read frame: %v", err)
	}
	return f
}

// ReadWithin returns the next frame or the error that ended the wait: a timeout, or the
// connection's close (see CloseStatus).
func (w *WS) ReadWithin(d time.Duration) (Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	typ, data, err := w.Conn.Read(ctx)
	if err != nil {
		return Frame{}, err
	}
	var f Frame
	if typ != websocket.MessageText || json.Unmarshal(data, &f) != nil {
		return Frame{}, fmt.Errorf("not a JSON text frame: %q", data)
	}
	return f, nil
}

// ReadUntil reads frames until one of type changes reports at least seq, and returns it.
func (w *WS) ReadUntil(seq int64) Frame {
	w.t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		f, err := w.ReadWithin(time.Until(deadline))
		if err != nil {
			w.t.Fatalf("waiting for changes up to seq %d: %v", seq, err)
		}
		if f.Type == "changes" && f.Seq >= seq {
			return f
		}
	}
}

// ExpectSilence fails the test if a frame arrives within d. The connection is unusable after a
// silent wait (the library closes it when a read's context ends), so this is a test's last read.
func (w *WS) ExpectSilence(d time.Duration) {
	w.t.Helper()
	if f, err := w.ReadWithin(d); err == nil {
		w.t.Fatalf("got frame %+v, want none within %v", f, d)
	}
}

// ExpectClose reads until the server closes the connection and checks its close code.
func (w *WS) ExpectClose(code websocket.StatusCode) {
	w.t.Helper()
	deadline := time.Now().Add(Wait)
	for time.Now().Before(deadline) {
		_, err := w.ReadWithin(time.Until(deadline))
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != code {
			w.t.Fatalf("connection ended with %v (close status %d), want close code %d", err, got, code)
		}
		return
	}
	w.t.Fatalf("no close code %d within %v", code, Wait)
}

// SSE is a connection to /sync/events.
type SSE struct {
	t      testing.TB
	Resp   *http.Response
	events chan Frame
	err    error // why the stream ended (nil: cleanly); set before events closes
}

// OpenSSE opens /sync/events?<query> with the token and extra headers; it fails the test unless
// the answer is a 200 event stream.
func OpenSSE(t testing.TB, client *http.Client, baseURL, query, token string, header http.Header) *SSE {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/sync/events?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("open /sync/events: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("open /sync/events: %d %s, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &SSE{t: t, Resp: resp, events: make(chan Frame, 64)}
	go s.read()
	return s
}

// read parses the stream into frames until it ends.
func (s *SSE) read() {
	sc := bufio.NewScanner(s.Resp.Body)
	var f Frame
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if f.Type != "" {
				s.events <- f
			}
			f = Frame{}
		case strings.HasPrefix(line, "id: "):
			f.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &f)
		}
	}
	s.err = sc.Err() // nil when the body ended cleanly
	close(s.events)
}

// ErrEnded is what Next reports, wrapped, once the server has ended the stream.
var ErrEnded = errors.New("event stream ended")

// Next returns the next event, or an error when none comes within d: ErrEnded (wrapping the
// read error, if any) when the stream has ended, so a test can reconnect as a client does.
func (s *SSE) Next(d time.Duration) (Frame, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case f, ok := <-s.events:
		if !ok {
			return Frame{}, fmt.Errorf("%w (read error: %v)", ErrEnded, s.err)
		}
		return f, nil
	case <-timer.C:
		return Frame{}, fmt.Errorf("no event within %v", d)
	}
}

// Read returns the next event, failing the test if none comes within Wait.
func (s *SSE) Read() Frame {
	s.t.Helper()
	f, err := s.Next(Wait)
	if err != nil {
		s.t.Fatal(err)
	}
	return f
}

// ExpectEnd reads events until the server ends the stream, failing the test unless the body
// ends cleanly within Wait.
func (s *SSE) ExpectEnd() {
	s.t.Helper()
	deadline := time.After(Wait)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				if err := s.err; err != nil {
					s.t.Fatalf("event stream broke off with %v, want a clean end", err)
				}
				return
			}
		case <-deadline:
			s.t.Fatalf("event stream still open after %v, want it ended", Wait)
		}
	}
}

// ReadUntil reads events until a changes event reports at least seq, and returns it.
func (s *SSE) ReadUntil(seq int64) Frame {
	s.t.Helper()
	for {
		if f := s.Read(); f.Type == "changes" && f.Seq >= seq {
			return f
		}
	}
}

// SeqID parses an event id.
func SeqID(f Frame) int64 {
	n, _ := strconv.ParseInt(f.ID, 10, 64)
	return n
}

// Goroutines counts the goroutines of this process with function (e.g.
// "push.(*wsSession).readAvailable") in their stack.
func Goroutines(function string) int {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
	n := 0
	for _, stack := range strings.Split(buf.String(), "\n\n") {
		if !strings.Contains(stack, function) {
			continue
		}
		for _, line := range strings.Split(stack, "\n") { // "<count> @ <pcs>"
			if count, _, ok := strings.Cut(line, " @ "); ok {
				c, _ := strconv.Atoi(count)
				n += c
			}
		}
	}
	return n
}

// WaitFor polls cond until it holds, failing the test after Wait.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
