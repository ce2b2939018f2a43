package push

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/coder/websocket"

	"github.com/pulsesync/pulsesync/internal/pushtest"
)

// kernelSendQueue reads, from /proc/net/tcp, the bytes the server's side of the connection
// between server and client holds unacknowledged: what the server's kernel keeps for a peer
// that does not read.
func kernelSendQueue(t *testing.T, server, client net.Addr) int {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	port := func(a net.Addr) string { return fmt.Sprintf(":%04X", a.(*net.TCPAddr).Port) }
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || !strings.HasSuffix(fields[1], port(server)) || !strings.HasSuffix(fields[2], port(client)) {
			continue
		}
		tx, _, _ := strings.Cut(fields[4], ":")
		n, err := strconv.ParseInt(tx, 16, 64)
		if err != nil {
			t.Fatalf("tx_queue %q: %v", fields[4], err)
		}
		return int(n)
	}
	t.Fatalf("no /proc/net/tcp entry from %v to %v", server, client)
	return 0
}

// receiveQueue is the bytes the client's kernel holds that the client has not read (SIOCINQ).
func receiveQueue(t *testing.T, conn net.Conn) int {
	t.Helper()
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	if err := raw.Control(func(fd uintptr) {
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
		if errno != 0 {
			t.Errorf("SIOCINQ: %v", errno)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// storm makes commits alice's commits 1..commits, a few at a time with a pause between, as a
// busy user's devices would: without the drain gate each pause would let a frame out.
func storm(s *testServer, commits int64) {
	for seq := int64(1); seq <= commits; seq++ {
		s.commit(seq)
		if seq%4 == 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// settled waits until nothing more can reach the client's kernel before it reads: either the
// server has told everything and its send queue is empty, or the queue has stayed non-empty
// for longer than a delayed ACK can take (200 ms on Linux), so the client's window is closed
// and the server holds its news back. It returns the queue.
func settled(t *testing.T, s *testServer, server, client net.Addr) int {
	t.Helper()
	var since time.Time
	var queued int
	pushtest.WaitFor(t, func() bool {
		queued = kernelSendQueue(t, server, client)
		switch {
		case queued == 0:
			since = time.Time{}
			return !s.pending()
		case since.IsZero():
			since = time.Now()
		}
		return time.Since(since) > 300*time.Millisecond
	})
	return queued
}

const (
	stormCommits = 6000
	// fewKiB bounds what the server's kernel may hold for a stalled reader: one notification
	// and the TCP probes' bookkeeping, far from the 51 bytes per commit it held before.
	fewKiB = 4 << 10
)

// stalledReaders are the stalled clients' receive buffers: the system's default, whose
// window a stalled reader's delayed ACKs leave open through the storm, and the smallest,
// whose window closes after a few frames, so the server holds its news with bytes unacked.
var stalledReaders = []struct {
	name   string
	rcvbuf int
}{{"default receive buffer", 0}, {"smallest receive buffer", 1}}

// TestWS_StalledReaderGetsTheLatestNotABacklog: a WebSocket reader stops reading while its
// user commits 6,000 times. The server holds at most one frame in its kernel; when the reader
// resumes it reads what its own kernel had accepted and then at most two more frames, the
// last carrying the latest seq.
func TestWS_StalledReaderGetsTheLatestNotABacklog(t *testing.T) {
	for _, tc := range stalledReaders {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, Config{Heartbeat: time.Minute, WriteTimeout: time.Minute}, time.Time{})
			c := dialWS(t, s, "/ws", tc.rcvbuf)
			if f := c.read(t); !strings.Contains(f, `"ready"`) {
				t.Fatalf("first frame %q, want ready", f)
			}
			storm(s, stormCommits)
			queued := settled(t, s, c.tcp.RemoteAddr(), c.tcp.LocalAddr())
			inKernel := receiveQueue(t, c.tcp)
			var wire, frames, beyond int
			for {
				f := c.read(t)
				frames++
				if wire >= inKernel {
					beyond++
				}
				wire += 2 + len(f) // an unmasked server frame under 126 bytes: a 2-byte header
				if f == fmt.Sprintf(`{"type":"changes","seq":%d}`, stormCommits) {
					break
				}
			}
			checkStall(t, queued, inKernel, frames, beyond)
		})
	}
}

// TestSSE_StalledReaderGetsTheLatestNotABacklog is the same for an SSE stream.
func TestSSE_StalledReaderGetsTheLatestNotABacklog(t *testing.T) {
	for _, tc := range stalledReaders {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, Config{Heartbeat: time.Minute, WriteTimeout: time.Minute}, time.Time{})
			c := openSSE(t, s, tc.rcvbuf)
			if event, err := c.read(); err != nil || !strings.Contains(event, `"ready"`) {
				t.Fatalf("first event %q, %v; want ready", event, err)
			}
			storm(s, stormCommits)
			queued := settled(t, s, c.tcp.RemoteAddr(), c.tcp.LocalAddr())
			inKernel := receiveQueue(t, c.tcp)
			_ = c.tcp.SetReadDeadline(time.Now().Add(pushtest.Wait))
			var wire, events, beyond int
			for {
				event, err := c.read()
				if err != nil {
					t.Fatalf("read event: %v", err)
				}
				events++
				if wire >= inKernel {
					beyond++
				}
				wire += len(strconv.FormatInt(int64(len(event)), 16)) + 2 + len(event) + 2 // one chunk per event
				if strings.Contains(event, fmt.Sprintf(`"seq":%d}`, stormCommits)) {
					break
				}
			}
			checkStall(t, queued, inKernel, events, beyond)
		})
	}
}

// checkStall asserts the bounds of a stalled reader's storm: the server's send queue, what
// the client's kernel accepted (the stalled client's delayed ACKs pace the frames until its
// window closes), and the frames that came beyond those. Before the drain gate the same storm
// left about 1,500 frames: 46–77 KB in the client's kernel, or as much in the server's.
func checkStall(t *testing.T, queued, inKernel, frames, beyond int) {
	t.Helper()
	t.Logf("%d commits: server send queue %d bytes; client kernel held %d bytes; %d frames read on resuming, %d beyond the client's kernel",
		stormCommits, queued, inKernel, frames, beyond)
	if queued > fewKiB {
		t.Errorf("server's send queue held %d bytes for the stalled reader, want at most %d", queued, fewKiB)
	}
	if inKernel > fewKiB*4 {
		t.Errorf("the client's kernel took %d bytes while it did not read, want a few KiB: frames sent only as the previous is acknowledged", inKernel)
	}
	if beyond > 2 {
		t.Errorf("%d frames came beyond what the client's kernel held, want at most 2 (the one in flight and the latest)", beyond)
	}
}

// stallUntilEnded keeps alice committing until the server counts transport's session stalled:
// a client with the smallest receive buffer that does not read closes its window after a few
// frames, and the held notification then waits out WriteTimeout.
func stallUntilEnded(t *testing.T, s *testServer, transport string) {
	t.Helper()
	seq := int64(0)
	pushtest.WaitFor(t, func() bool {
		seq++
		s.commit(seq)
		return s.stalled(transport) == 1
	})
}

// TestWS_StalledReaderIsClosedWith4008: a reader that takes nothing for WriteTimeout while a
// notification waits is closed with 4008, which it reads behind the frames it had not read.
func TestWS_StalledReaderIsClosedWith4008(t *testing.T) {
	s := newTestServer(t, Config{Heartbeat: time.Minute, WriteTimeout: 300 * time.Millisecond}, time.Time{})
	c := dialWS(t, s, "/ws", 1)
	c.read(t)
	stallUntilEnded(t, s, "ws")
	for {
		ctx, cancel := context.WithTimeout(context.Background(), pushtest.Wait)
		_, _, err := c.conn.Read(ctx)
		cancel()
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != CloseStalled {
			t.Fatalf("connection ended with %v (close status %d), want %d", err, got, CloseStalled)
		}
		break
	}
	pushtest.WaitFor(t, func() bool { return s.hub.Connections() == 0 })
}

// TestSSE_StalledReaderStreamEnds: the same reader on SSE finds the stream ended cleanly
// behind the events it had not read, so it reconnects.
func TestSSE_StalledReaderStreamEnds(t *testing.T) {
	s := newTestServer(t, Config{Heartbeat: time.Minute, WriteTimeout: 300 * time.Millisecond}, time.Time{})
	c := openSSE(t, s, 1)
	if _, err := c.read(); err != nil {
		t.Fatal(err)
	}
	stallUntilEnded(t, s, "sse")
	_ = c.tcp.SetReadDeadline(time.Now().Add(pushtest.Wait))
	for {
		if _, err := c.read(); err != nil {
			if err != io.EOF {
				t.Fatalf("stream ended with %v, want a clean end (io.EOF)", err)
			}
			break
		}
	}
	pushtest.WaitFor(t, func() bool { return s.hub.Connections() == 0 })
}

// TestWS_StalledReadersCost measures what stalled WebSocket readers cost the server once
// their user has committed stormCommits times: its kernel's send queue, asserted per
// connection, and its heap growth over the storm, logged per connection (the clients live in
// this process too, but a stalled client's share of the storm is in its kernel, not its heap).
func TestWS_StalledReadersCost(t *testing.T) {
	const readers = 20
	s := newTestServer(t, Config{Heartbeat: time.Minute, WriteTimeout: time.Minute}, time.Time{})
	clients := make([]*wsClient, readers)
	for i := range clients {
		clients[i] = dialWS(t, s, "/ws", 0)
		clients[i].read(t)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	storm(s, stormCommits)
	total := 0
	for _, c := range clients {
		queued := settled(t, s, c.tcp.RemoteAddr(), c.tcp.LocalAddr())
		if queued > fewKiB {
			t.Fatalf("server's send queue holds %d bytes for a stalled reader, want at most %d", queued, fewKiB)
		}
		total += queued
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%d stalled readers, %d commits: server send queue %d bytes per connection; heap %+d bytes per connection",
		readers, stormCommits, total/readers, (int64(after.HeapAlloc)-int64(before.HeapAlloc))/readers)
}
