package push

import (
	"runtime"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/pushtest"
)

// TestWS_IdleSessionsHoldNoGoroutine: idle WebSockets, with a message half sent or none, hold
// no goroutine on the server; their next bytes are still read and answered.
func TestWS_IdleSessionsHoldNoGoroutine(t *testing.T) {
	s := newTestServer(t, Config{MaxPerUser: 200}, time.Time{})
	const idle = 100
	before := runtime.NumGoroutine()
	clients := make([]*rawWS, idle)
	for i := range clients {
		clients[i] = dialRaw(t, s, "/ws")
		clients[i].next() // ready
		if i%2 == 1 {
			clients[i].send(clientFrame(false, opText, []byte(`{"type":`)))
		}
	}
	pushtest.WaitFor(t, func() bool { return runtime.NumGoroutine()-before < idle/10 })
	for _, c := range clients {
		c.send(clientFrame(true, opPing, []byte("p")))
		if op, payload := c.next(); op != opPong || string(payload) != "p" {
			t.Fatalf("idle session's answer to a ping: %#x %q", op, payload)
		}
	}
}
