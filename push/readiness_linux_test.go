package push

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/pushtest"
)

// socketPair is a connected pair of loopback TCP sockets.
func socketPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func rawOf(t *testing.T, c net.Conn) syscall.RawConn {
	t.Helper()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func expectCall(t *testing.T, calls chan struct{}, want bool, what string) {
	t.Helper()
	wait := 200 * time.Millisecond // for the absence of a call; a call comes in microseconds
	if want {
		wait = 10 * time.Second
	}
	select {
	case <-calls:
		if !want {
			t.Fatalf("%s: a callback came, want none", what)
		}
	case <-time.After(wait):
		if want {
			t.Fatalf("%s: no callback", what)
		}
	}
}

// armedWatch starts a poller and arms a watch of a fresh socket whose callbacks land in calls;
// the test writes to (or closes) client.
func armedWatch(t *testing.T) (w *watch, client net.Conn, calls chan struct{}) {
	t.Helper()
	p, err := newReadiness()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	server, client := socketPair(t)
	calls = make(chan struct{}, 8)
	w = p.Watch(rawOf(t, server), func() { calls <- struct{}{} })
	if err := w.Arm(); err != nil {
		t.Fatalf("arm: %v", err)
	}
	return w, client, calls
}

// TestReadiness_OneCallbackPerArm: a watch calls back once per Arm when its socket has bytes,
// again on the next Arm while unread bytes remain, and never after Stop.
func TestReadiness_OneCallbackPerArm(t *testing.T) {
	w, client, calls := armedWatch(t)
	expectCall(t, calls, false, "armed, nothing sent")
	client.Write([]byte("x"))
	expectCall(t, calls, true, "armed, a byte sent")
	client.Write([]byte("y"))
	expectCall(t, calls, false, "not rearmed, another byte sent")
	if err := w.Arm(); err != nil {
		t.Fatalf("rearm: %v", err)
	}
	expectCall(t, calls, true, "rearmed with two unread bytes")
	w.Stop()
	if err := w.Arm(); err == nil {
		t.Fatalf("arm after stop succeeded, want an error")
	}
	client.Write([]byte("z"))
	expectCall(t, calls, false, "stopped, a byte sent")
}

// TestReadiness_PeerCloseCallsBack: a peer that closes its end wakes the watch, so the session
// reads the end of the stream and goes.
func TestReadiness_PeerCloseCallsBack(t *testing.T) {
	_, client, calls := armedWatch(t)
	client.Close()
	expectCall(t, calls, true, "peer closed")
}

// TestReadiness_CloseEndsThePoller: Close stops the poller's goroutine.
func TestReadiness_CloseEndsThePoller(t *testing.T) {
	p, err := newReadiness()
	if err != nil {
		t.Fatal(err)
	}
	pollers := func() int { return pushtest.Goroutines("push.(*readiness).run") }
	pushtest.WaitFor(t, func() bool { return pollers() == 1 })
	p.Close()
	pushtest.WaitFor(t, func() bool { return pollers() == 0 })
}
