package e2e

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/servertest"
)

// TestFault_ConnectionCutMidUpload: a client's connection is cut at every stage of an upload
// (in the headers, in the body, right after the body, while the server works). Each cut
// upload is all or nothing, and its retry with the same ids converges to exactly one
// application of every change (invariant I6): the stream is dense, each change appears once,
// each batch as one block.
func TestFault_ConnectionCutMidUpload(t *testing.T) {
	srv := servertest.New(t, servertest.Options{})
	l := newLedger()
	d := newDevice(t, srv.Client, "alice", "cutter")
	addr := mustHost(t, srv.URL)
	cuts := []struct {
		name string
		// upTo is how many bytes of the request are written before the cut; -1 = all of it.
		upTo func(head, body int) int
		// linger is how long the connection stays open after writing, without reading.
		linger time.Duration
	}{
		{"in the headers", func(head, _ int) int { return head / 2 }, 0},
		{"after the headers", func(head, _ int) int { return head }, 0},
		{"in the body", func(head, body int) int { return head + body/2 }, 0},
		{"one byte short", func(head, body int) int { return head + body - 1 }, 0},
		{"right after the body", func(int, int) int { return -1 }, 0},
		{"while the server works", func(int, int) int { return -1 }, 5 * time.Millisecond},
		{"after the answer was sent", func(int, int) int { return -1 }, 300 * time.Millisecond},
	}
	for round := range 3 {
		for _, cut := range cuts {
			batch := d.nextBatch(200)
			if err := cutUpload(addr, d.token, uploadBody(batch), cut.upTo, cut.linger); err != nil {
				t.Fatalf("round %d, cut %s: %v", round, cut.name, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if _, err := d.send(ctx, nodes(srv.URL), batch, l); err != nil {
				t.Fatalf("round %d, cut %s: the retry did not converge: %v", round, cut.name, err)
			}
			cancel()
		}
	}
	if n := checkStream(t, srv.Client, srv.URL, "alice", l); n != 3*len(cuts)*200 {
		t.Fatalf("%d changes in the stream, want %d", n, 3*len(cuts)*200)
	}
	if f, n := d.failures(), d.transportErrs.Load(); len(f) > 0 || n > 0 {
		t.Fatalf("retries failed (statuses %v, %d transport errors), want each retry answered at once", f, n)
	}
}

// cutUpload writes the first upTo(len(head), len(body)) bytes of an upload request (all of it
// for -1) to addr, waits linger without reading, and resets the connection, as a dying client
// or a dropped network would.
func cutUpload(addr, token string, body []byte, upTo func(head, body int) int, linger time.Duration) error {
	head := fmt.Sprintf("POST /sync/upload HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		addr, token, len(body))
	request := append([]byte(head), body...)
	n := upTo(len(head), len(body))
	if n < 0 {
		n = len(request)
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write(request[:n]); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if linger > 0 {
		time.Sleep(linger) // the fault's timing, not a synchronisation
	}
	return conn.(*net.TCPConn).SetLinger(0)
}

// mustHost returns the host:port of a base URL.
func mustHost(t testing.TB, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
