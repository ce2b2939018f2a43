package httpapi_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/internal/node"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

// rawConn opens a TCP connection to srv and sends head (a request line and headers, without the
// blank line that ends them) followed by the blank line and body.
func rawConn(t *testing.T, srv *servertest.Server, head, body string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head+"\r\nHost: test\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readAnswer reads one HTTP answer from conn within wait, failing the test if none comes.
func readAnswer(t *testing.T, conn net.Conn, wait time.Duration) (*http.Response, string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", wait, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return resp, string(b)
}

// TestDeadlines_BodyNeverSentIs408 announces a body and sends none: the upload is answered 408
// request_timeout once the grace has passed, and the connection is closed.
func TestDeadlines_BodyNeverSentIs408(t *testing.T) {
	srv := servertest.New(t, servertest.Options{HTTP: node.HTTPConfig{Deadlines: httpapi.Deadlines{BodyGrace: 200 * time.Millisecond}}})
	conn := rawConn(t, srv, "POST /sync/upload HTTP/1.1\r\nAuthorization: Bearer "+srv.Token("alice", "phone")+
		"\r\nContent-Type: application/json\r\nContent-Length: 100", "")
	resp, body := readAnswer(t, conn, pushtest.Wait)
	if resp.StatusCode != http.StatusRequestTimeout || body != envelope("request_timeout", "request body arrived too slowly") {
		t.Fatalf("got %d %q, want 408 request_timeout", resp.StatusCode, body)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection stayed open after the 408")
	}
}

// TestDeadlines_TrickledBodyIs408: a body that keeps coming, a byte at a time, but slower
// than the minimum rate, fails once it falls behind.
func TestDeadlines_TrickledBodyIs408(t *testing.T) {
	srv := servertest.New(t, servertest.Options{HTTP: node.HTTPConfig{Deadlines: httpapi.Deadlines{
		BodyGrace: 200 * time.Millisecond, MinBodyRate: 1000}}})
	conn := rawConn(t, srv, "POST /sync/upload HTTP/1.1\r\nAuthorization: Bearer "+srv.Token("alice", "phone")+
		"\r\nContent-Length: 100000", "{")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // 100 bytes/s: far below the minimum rate
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	resp, body := readAnswer(t, conn, pushtest.Wait)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, `"request_timeout"`) {
		t.Fatalf("got %d %q, want 408 request_timeout", resp.StatusCode, body)
	}
}

// TestDeadlines_BodyAtPaceIsRead: a body sent in pieces, each before its deadline, is read
// whole although it takes longer than the grace.
func TestDeadlines_BodyAtPaceIsRead(t *testing.T) {
	srv := servertest.New(t, servertest.Options{HTTP: node.HTTPConfig{Deadlines: httpapi.Deadlines{
		BodyGrace: 300 * time.Millisecond, MinBodyRate: 100}}})
	body := batch(insertUser(1, rowR, "Ann"))
	// The first half earns (len/2)/100 s ≥ 0.9 s beyond the grace; the second half comes after
	// 0.4 s, past the grace alone.
	conn := rawConn(t, srv, "POST /sync/upload HTTP/1.1\r\nAuthorization: Bearer "+srv.Token("alice", "phone")+
		"\r\nContent-Length: "+strconv.Itoa(len(body)), body[:len(body)/2])
	time.Sleep(400 * time.Millisecond) // the pause under test, not a synchronisation
	if _, err := io.WriteString(conn, body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	resp, got := readAnswer(t, conn, pushtest.Wait)
	if resp.StatusCode != http.StatusOK || !strings.Contains(got, `"applied"`) {
		t.Fatalf("got %d %q, want the change applied", resp.StatusCode, got)
	}
}

// TestDeadlines_UnauthenticatedBodyIsNotWaitedFor: a request without a valid token that
// announces a body it never sends is answered 401 at once, not after the body's deadline, and
// the connection is closed.
func TestDeadlines_UnauthenticatedBodyIsNotWaitedFor(t *testing.T) {
	srv := servertest.New(t, servertest.Options{HTTP: node.HTTPConfig{Deadlines: httpapi.Deadlines{BodyGrace: time.Hour}}})
	conn := rawConn(t, srv, "POST /sync/upload HTTP/1.1\r\nContent-Length: 1000", "")
	resp, _ := readAnswer(t, conn, pushtest.Wait)
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Fatalf("got %d (close %v), want 401 closing the connection", resp.StatusCode, resp.Close)
	}
}

// TestObserve_ClientAbortIs499: a client that leaves mid-upload is counted as 499, not as an
// error of the server.
func TestObserve_ClientAbortIs499(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	conn := rawConn(t, srv, "POST /sync/upload HTTP/1.1\r\nAuthorization: Bearer "+srv.Token("alice", "phone")+
		"\r\nContent-Length: 1000", `{"changes":[`)
	conn.Close()
	requests := func(code string) float64 {
		return counter(t, srv, "pulsesync_http_requests_total", map[string]string{"route": "/sync/upload", "code": code})
	}
	pushtest.WaitFor(t, func() bool { return requests("499") == 1 })
	for _, code := range []string{"400", "500"} {
		if n := requests(code); n != 0 {
			t.Fatalf("%v uploads counted as %s, want the aborted one as 499 only", n, code)
		}
	}
}

// counter reads the counter name of srv's registry whose labels include labels; 0 when absent.
func counter(t *testing.T, srv *servertest.Server, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := srv.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestDeadlines_HeldRequestsOutliveTheWriteTimeout: the answer deadline bounds ordinary answers
// only. A WebSocket and an SSE stream still carry a change that commits after it has passed,
// and a long-poll that waits past it still answers.
func TestDeadlines_HeldRequestsOutliveTheWriteTimeout(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	srv := servertest.New(t, servertest.Options{HTTP: node.HTTPConfig{Deadlines: httpapi.Deadlines{WriteTimeout: writeTimeout}}})
	phone := newDevice(srv, "alice", "phone")
	ws := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "laptop"))
	ws.Read()
	sse := pushtest.OpenSSE(t, srv.Client, srv.URL, "after=0", srv.Token("alice", "tablet"), nil)
	sse.Read()
	start := time.Now()
	poll := call(t, srv, http.MethodGet, "/sync/download?after=0&wait=1", srv.Token("alice", "watch"), "")
	if poll.status != http.StatusOK || time.Since(start) < time.Second {
		t.Fatalf("long-poll of 1 s: %d %s after %v, want 200 after the wait", poll.status, poll.body, time.Since(start))
	}
	seq := *phone.upload(t, insertBody(1, 1)).HighestServerSeq
	if f := ws.ReadUntil(seq); f.Seq != seq {
		t.Fatalf("WebSocket after the write timeout: %+v, want changes seq %d", f, seq)
	}
	if f := sse.ReadUntil(seq); f.Seq != seq {
		t.Fatalf("SSE after the write timeout: %+v, want changes seq %d", f, seq)
	}
}
