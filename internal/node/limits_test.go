package node_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/internal/node"
	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{Template: servertest.Template})
}

// dial opens a TCP connection to srv, closed when the test ends.
func dial(t *testing.T, srv *servertest.Server) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// send writes s to conn, failing the test on error.
func send(t *testing.T, conn net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(conn, s); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// answer reads one HTTP answer from r within wait.
func answer(conn net.Conn, r *bufio.Reader, wait time.Duration) (*http.Response, string, error) {
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// closedBy reads conn (discarding what the server still says) until the server closes it, and
// fails if that is not done by deadline: the connection was held past its bound.
func closedBy(conn net.Conn, deadline time.Time) error {
	_ = conn.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.New("still open")
	}
	return nil // EOF or a reset: closed by the server
}

const uploadBody = `{"changes":[{"source_change_id":1,"schema":"business","table":"users","op":"INSERT",` +
	`"pk":"6f0d3c4e-8f0b-4c1e-9a57-2f1e3b7c9d01","server_version":0,"payload":{"name":"Ann"}}]}`

// TestLimits_ThousandSlowClientsDoNotPinTheNode holds 1,000 connections of the kinds that used
// to be held forever: headers never finished, a body announced and never sent, a body trickled
// a byte at a time, and a keep-alive connection left idle. Meanwhile /health and another
// client's upload answer; then every slow connection is closed by the server within its bound.
func TestLimits_ThousandSlowClientsDoNotPinTheNode(t *testing.T) {
	const bound = time.Second
	srv := servertest.New(t, servertest.Options{HTTP: node.HTTPConfig{
		ReadHeaderTimeout: bound, IdleTimeout: bound,
		Deadlines: httpapi.Deadlines{BodyGrace: bound, MinBodyRate: 1 << 10},
	}})
	token := srv.Token("mallory", "phone")
	const perKind = 250
	kinds := []struct {
		name  string
		start func(conn net.Conn)
	}{
		{"headers never finished", func(conn net.Conn) { send(t, conn, "POST /sync/upload HTTP/1.1\r\nHost: x\r\n") }},
		{"body never sent", func(conn net.Conn) {
			send(t, conn, "POST /sync/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+token+"\r\nContent-Length: 500\r\n\r\n")
		}},
		{"body trickled", func(conn net.Conn) {
			send(t, conn, "POST /sync/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+token+"\r\nContent-Length: 100000\r\n\r\n{")
		}},
		{"idle keep-alive", func(conn net.Conn) {
			send(t, conn, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, _, err := answer(conn, bufio.NewReader(conn), pushtest.Wait); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("keep-alive /health: %v", err)
			}
		}},
	}
	conns := make([][]net.Conn, len(kinds))
	for i, kind := range kinds {
		for range perKind {
			conn := dial(t, srv)
			kind.start(conn)
			conns[i] = append(conns[i], conn)
		}
	}

	// Trickle one byte per connection every 50 ms: 20 bytes/s, far below the minimum rate.
	stop := make(chan struct{})
	var trickling sync.WaitGroup
	trickling.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, conn := range conns[2] {
					_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = conn.Write([]byte(" "))
				}
			}
		}
	})
	defer func() { close(stop); trickling.Wait() }()

	// While they are held, the node serves everyone else.
	if resp, err := srv.Client.Get(srv.URL + "/health"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/health while 1,000 slow connections are held: %v", err)
	} else {
		resp.Body.Close()
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/sync/upload", strings.NewReader(uploadBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.Token("alice", "phone"))
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatalf("upload while 1,000 slow connections are held: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"applied"`) {
		t.Fatalf("upload while 1,000 slow connections are held: %d %s", resp.StatusCode, b)
	}

	// Every slow connection is closed by the server. The bound is 1 s after the connection's
	// last request began; the wait allows for a loaded machine, and is far from "forever".
	deadline := time.Now().Add(10 * bound)
	for i, kind := range kinds {
		var open int
		for _, conn := range conns[i] {
			if closedBy(conn, deadline) != nil {
				open++
			}
		}
		if open > 0 {
			t.Errorf("%s: %d of %d connections still open 10 s after their 1 s bound", kind.name, open, perKind)
		}
	}
}

// TestLimits_ConnectionsOverThePerAddressLimitAreRefused: with 20 connections open from one
// address, more are answered 503 with Retry-After at once and closed, not queued; once one of
// the 20 closes, a new one is admitted.
func TestLimits_ConnectionsOverThePerAddressLimitAreRefused(t *testing.T) {
	const limit = 20
	srv := servertest.New(t, servertest.Options{LimitLoopback: true, HTTP: node.HTTPConfig{
		MaxConnsPerIP: limit, ConnectRate: -1, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute}})
	held := make([]net.Conn, limit)
	for i := range held {
		held[i] = dial(t, srv)
		send(t, held[i], "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, _, err := answer(held[i], bufio.NewReader(held[i]), pushtest.Wait); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d within the limit: %v", i, err)
		}
	}
	const over = 10
	for i := range over {
		conn := dial(t, srv)
		resp, body, err := answer(conn, bufio.NewReader(conn), pushtest.Wait) // sends nothing: the answer comes unasked
		if err != nil {
			t.Fatalf("connection %d over the limit: no answer: %v", i, err)
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(body, `"too_many_connections"`) {
			t.Fatalf("connection over the limit: %d %v %q, want 503 too_many_connections with Retry-After", resp.StatusCode, resp.Header, body)
		}
		if closedBy(conn, time.Now().Add(pushtest.Wait)) != nil {
			t.Fatal("a refused connection stayed open")
		}
	}
	if got := counter(t, srv, "ip_connections"); got != over {
		t.Fatalf("pulsesync_http_refused_total{reason=ip_connections} = %v, want %d", got, over)
	}

	held[0].Close()
	pushtest.WaitFor(t, func() bool { // the server frees the place once it notices the close
		conn := dial(t, srv)
		defer conn.Close()
		send(t, conn, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, _, err := answer(conn, bufio.NewReader(conn), pushtest.Wait)
		return err == nil && resp.StatusCode == http.StatusOK
	})
}

// TestLimits_ConnectRateOverTheBurstIs429: an address may open ConnectBurst connections at
// once; the next is answered 429 with Retry-After, even though it sent its request first.
func TestLimits_ConnectRateOverTheBurstIs429(t *testing.T) {
	const burst = 5
	srv := servertest.New(t, servertest.Options{LimitLoopback: true, HTTP: node.HTTPConfig{
		MaxConnsPerIP: -1, ConnectRate: 0.01, ConnectBurst: burst}})
	get := func() (*http.Response, string) {
		conn := dial(t, srv)
		send(t, conn, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, body, err := answer(conn, bufio.NewReader(conn), pushtest.Wait)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		return resp, body
	}
	for i := range burst {
		if resp, body := get(); resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d within the burst: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := get()
	retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || retry < 1 || !strings.Contains(body, `"too_many_connections"`) {
		t.Fatalf("connection over the burst: %d Retry-After %q %q, want 429 with Retry-After ≥ 1", resp.StatusCode,
			resp.Header.Get("Retry-After"), body)
	}
	if got := counter(t, srv, "connect_rate"); got != 1 {
		t.Fatalf("pulsesync_http_refused_total{reason=connect_rate} = %v, want 1", got)
	}
}

// counter reads pulsesync_http_refused_total{reason}.
func counter(t *testing.T, srv *servertest.Server, reason string) float64 {
	t.Helper()
	families, err := srv.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "pulsesync_http_refused_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
