package push

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/sequencer"
)

// testServer is a push service behind a real HTTP server with push.ConnContext wired: /ws
// and /sse serve alice's laptop, /ws-auth a WebSocket that authenticates with its first
// message. The user's commits are advances fed to the hub, as the fan-out would.
type testServer struct {
	svc *Service
	hub *Hub
	url string
}

func newTestServer(t *testing.T, cfg Config, expires time.Time) *testServer {
	t.Helper()
	hub := NewHub()
	cfg.Hub = hub
	cfg.CurrentSeq = func(context.Context, string) (int64, error) { return 0, nil }
	cfg.Registry = prometheus.NewRegistry()
	svc, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	peer := Peer{User: "alice", Source: "laptop", Expires: expires}
	admit := func(w http.ResponseWriter, transport string) *Ticket {
		ticket, err := svc.Admit(peer.User, transport)
		if err != nil {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		}
		return ticket
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if ticket := admit(w, "ws"); ticket != nil {
			svc.ServeWS(w, r, WSRequest{Peer: &peer, Ticket: ticket})
		}
	})
	mux.HandleFunc("/ws-auth", func(w http.ResponseWriter, r *http.Request) {
		svc.ServeWS(w, r, WSRequest{Authenticate: func(context.Context, string) (Peer, error) { return peer, nil }})
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		if ticket := admit(w, "sse"); ticket != nil {
			if err := svc.ServeSSE(w, r, SSERequest{Peer: peer, Ticket: ticket}); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}
	})
	ts := httptest.NewUnstartedServer(mux)
	ts.Config.ConnContext = ConnContext
	ts.Start()
	t.Cleanup(func() { svc.Shutdown(); ts.Close() })
	return &testServer{svc: svc, hub: hub, url: ts.URL}
}

// commit announces alice's commit seq from her phone.
func (s *testServer) commit(seq int64) {
	s.hub.Advance(sequencer.Advance{User: "alice", Seq: seq, From: seq, Source: "phone", At: time.Now()})
}

// pending reports whether any of alice's sessions has news it has not written.
func (s *testServer) pending() bool {
	sh := s.hub.shard("alice")
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if u := sh.users["alice"]; u != nil {
		for sub := range u.subs {
			if sub.want > sub.told {
				return true
			}
		}
	}
	return false
}

// stalled reads the pulsesync_push_stalled_total counter of transport.
func (s *testServer) stalled(transport string) float64 {
	return testutil.ToFloat64(s.svc.metrics.stalled.WithLabelValues(transport))
}

// dialTCP connects to the server's address with a receive buffer of rcvbuf bytes (0 = the
// system's default), set before the connection so the window it advertises follows it.
func dialTCP(t *testing.T, ctx context.Context, addr string, rcvbuf int) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, raw syscall.RawConn) error {
		if rcvbuf == 0 {
			return nil
		}
		var err error
		if cerr := raw.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, err
}

// wsClient is a WebSocket client whose TCP connection the test can inspect.
type wsClient struct {
	conn *websocket.Conn
	tcp  net.Conn
}

func dialWS(t *testing.T, s *testServer, path string, rcvbuf int) *wsClient {
	t.Helper()
	var tcp net.Conn
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		conn, err := dialTCP(t, ctx, addr, rcvbuf)
		tcp = conn
		return conn, err
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), pushtest.Wait)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+path, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return &wsClient{conn: conn, tcp: tcp}
}

// read returns the next message, failing the test if none comes within pushtest.Wait.
func (c *wsClient) read(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pushtest.Wait)
	defer cancel()
	_, data, err := c.conn.Read(ctx)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return string(data)
}

// sendRequest sends GET path with header on a TCP connection of its own, dialled with a
// receive buffer of rcvbuf bytes (see dialTCP), and returns the connection and the request.
func sendRequest(t *testing.T, s *testServer, path string, header http.Header, rcvbuf int) (net.Conn, *http.Request) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pushtest.Wait)
	defer cancel()
	tcp, err := dialTCP(t, ctx, strings.TrimPrefix(s.url, "http://"), rcvbuf)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	if err := req.Write(tcp); err != nil {
		t.Fatal(err)
	}
	return tcp, req
}

// sseClient is an SSE client on a TCP connection of its own, reading the chunked body itself,
// so that no HTTP client buffers events the test means to leave in the kernel.
type sseClient struct {
	tcp    net.Conn
	events *bufio.Reader
}

func openSSE(t *testing.T, s *testServer, rcvbuf int) *sseClient {
	t.Helper()
	tcp, req := sendRequest(t, s, "/sse", nil, rcvbuf)
	resp, err := http.ReadResponse(bufio.NewReader(tcp), req)
	if err != nil {
		t.Fatalf("open /sse: %v", err)
	}
	if resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) != 1 || !resp.Close {
		t.Fatalf("open /sse: %d %v close=%v, want 200, chunked, Connection: close", resp.StatusCode, resp.TransferEncoding, resp.Close)
	}
	return &sseClient{tcp: tcp, events: bufio.NewReader(resp.Body)}
}

// read returns the next event's bytes up to its blank line, or the error that ended the body.
func (c *sseClient) read() (string, error) {
	var event bytes.Buffer
	for {
		line, err := c.events.ReadString('\n')
		event.WriteString(line)
		switch {
		case err != nil:
			return event.String(), err
		case line == "\n":
			return event.String(), nil
		}
	}
}

// TestWS_InvalidUTF8Closes1007: a text message that is not UTF-8 closes the socket with 1007,
// whether it is the first-message auth or a later message (RFC 6455 §8.1).
func TestWS_InvalidUTF8Closes1007(t *testing.T) {
	s := newTestServer(t, Config{}, time.Time{})
	invalid := []byte("{\"type\":\"ack\",\"seq\":1,\"x\":\"\xff\xfe\"}")
	for _, tc := range []struct{ name, path string }{{"first message", "/ws-auth"}, {"after ready", "/ws"}} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialWS(t, s, tc.path, 0)
			if tc.path == "/ws" {
				if f := c.read(t); !strings.Contains(f, `"ready"`) {
					t.Fatalf("first frame %q, want ready", f)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), pushtest.Wait)
			defer cancel()
			if err := c.conn.Write(ctx, websocket.MessageText, invalid); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.conn.Read(ctx)
			if got := websocket.CloseStatus(err); got != websocket.StatusInvalidFramePayloadData {
				t.Fatalf("read after invalid UTF-8: %v (close status %d), want close 1007", err, got)
			}
		})
	}
}

// TestSSE_EndsAtTokenExpiry: at the token's expiry the response ends cleanly (the chunked
// body's end, then the connection's), so a client sees EOF and reconnects with a fresh token.
func TestSSE_EndsAtTokenExpiry(t *testing.T) {
	s := newTestServer(t, Config{}, time.Now().Add(300*time.Millisecond))
	c := openSSE(t, s, 0)
	if event, err := c.read(); err != nil || !strings.Contains(event, `"ready"`) {
		t.Fatalf("first event %q, %v; want ready", event, err)
	}
	_ = c.tcp.SetReadDeadline(time.Now().Add(pushtest.Wait))
	if event, err := c.read(); event != "" || err != io.EOF {
		t.Fatalf("after expiry: event %q, %v; want the body's clean end (io.EOF)", event, err)
	}
	if n, err := c.tcp.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("connection after the body: %d bytes, %v; want it closed (EOF)", n, err)
	}
	pushtest.WaitFor(t, func() bool { return s.hub.Connections() == 0 })
}

// TestLongPoll_EndsAtTokenExpiry: a long-poll asked to wait 30 s with a token that expires
// sooner polls a last time at the expiry and returns: a held answer never outlives its token.
func TestLongPoll_EndsAtTokenExpiry(t *testing.T) {
	s := newTestServer(t, Config{}, time.Time{})
	ticket, err := s.svc.Admit("alice", "longpoll")
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(300 * time.Millisecond)
	var polls atomic.Int32
	err = s.svc.LongPoll(context.Background(), LongPollRequest{Peer: Peer{User: "alice", Source: "laptop", Expires: expires},
		Ticket: ticket, Wait: 30 * time.Second}, func(context.Context) (bool, error) {
		polls.Add(1)
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if now := time.Now(); now.Before(expires) || now.After(expires.Add(pushtest.Wait)) {
		t.Fatalf("returned %v after the expiry, want at it, long before the 30 s wait", now.Sub(expires))
	}
	if n := polls.Load(); n != 2 {
		t.Fatalf("%d polls, want the first and a last one at the expiry", n)
	}
}
