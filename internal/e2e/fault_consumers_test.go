package e2e

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/push"
)

// TestFault_SlowAndStalledConsumers: while WebSockets that never read and downloads read at a
// trickle hang on to a node, two users' devices upload under load. Pass rule: no upload fails,
// a healthy device of the same user hears every acknowledged upload within 2 s (no wake-up is
// held up behind the stalled ones), and the stream holds every acknowledged change once.
func TestFault_SlowAndStalledConsumers(t *testing.T) {
	srv := servertest.New(t, servertest.Options{Push: push.Config{WriteTimeout: time.Second}})
	ld := startLoad(t, srv.Client, nodes(srv.URL), []string{"alice", "bob"}, 2, 20)
	ld.waitAcked(t, 500) // a stream long enough that a page outgrows the slow readers' buffers

	const stalledSockets, slowDownloads = 20, 8
	for i := range stalledSockets {
		pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", fmt.Sprintf("stalled-%d", i))) // never read
	}
	ctx, stop := context.WithCancel(context.Background())
	var slow sync.WaitGroup
	defer slow.Wait()
	defer stop()
	for i := range slowDownloads {
		conn := trickleDownload(t, srv.URL, srv.Token("alice", fmt.Sprintf("slow-%d", i)))
		slow.Go(func() {
			defer conn.Close()
			buf := make([]byte, 256)
			for ctx.Err() == nil {
				if _, err := conn.Read(buf); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond) // the slow reader's pace, not a synchronisation
			}
		})
	}

	healthy := &chaosListener{user: "alice", token: srv.Token("alice", "healthy")}
	var listening sync.WaitGroup
	listening.Go(func() { healthy.run(ctx, nodes(srv.URL)) })
	pushtest.WaitFor(t, func() bool { return healthy.heardUpTo() > 0 })
	from := len(ld.ledger.acksOf("alice"))
	ld.waitAcked(t, 800)
	ld.end(t)
	pushtest.WaitFor(t, func() bool { return healthy.heardUpTo() >= ld.ledger.highest("alice") })
	stop()
	listening.Wait()

	if byStatus, transport := ld.failures(); len(byStatus) > 0 || transport > 0 {
		t.Errorf("uploads failed beside slow consumers (by status %v, %d without answer), want none", byStatus, transport)
	}
	during := &ledger{times: map[string][]ackTime{"alice": ld.ledger.acksOf("alice")[from:]}}
	late, missed, worst := healthy.lateness(during, "alice", 2*time.Second)
	if late > 0 || missed > 0 {
		t.Errorf("healthy device: %d wake-ups later than 2 s, %d missed (worst %v), want 0", late, missed, worst)
	}
	n := checkAll(t, srv.Client, srv.URL, ld.ledger)
	t.Logf("%d changes checked; %d acknowledgements heard by the healthy device, the latest after %v",
		n, len(during.times["alice"]), worst.Round(time.Millisecond))
}

// trickleDownload starts a download of a 1,000-change page on a connection with a tiny receive
// buffer and returns the connection unread.
func trickleDownload(t *testing.T, base, token string) net.Conn {
	t.Helper()
	addr := mustHost(t, base)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).SetReadBuffer(1024)
	fmt.Fprintf(conn, "GET /sync/download?after=0&limit=1000 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", addr, token)
	return conn
}
