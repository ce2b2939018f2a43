package scenarios

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/pulsesync/pulsesync/loadtest"
)

// closeOnDrain closes conn politely when vu starts draining, so that the VU's read loop sees the
// close and ends. Defer the returned wait: it cancels the close if the drain has not come, and
// otherwise waits for the close handshake to finish.
func closeOnDrain(vu *loadtest.VU, conn *websocket.Conn) (wait func()) {
	closing := make(chan struct{})
	stop := context.AfterFunc(vu.Draining(), func() {
		defer close(closing)
		conn.Close(websocket.StatusNormalClosure, "load test over")
	})
	return func() {
		if !stop() {
			<-closing
		}
	}
}

// newClient returns an HTTP client whose connections come from local (nil:
// the system's choice) and that keeps up to idle connections per host for
// reuse, so VUs do not reconnect per request. Timeout bounds a request;
// coder/websocket applies it to the handshake only.
func newClient(local net.IP, idle int, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         loadtest.CountingDialer(d.DialContext),
			MaxIdleConnsPerHost: idle,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true, // the protocol has none; measure what it sends
		},
	}
}

// sourceIP is the i-th client address of a spread over n loopback addresses
// from 127.0.0.2, or nil when n is 0.
func sourceIP(i, n int) net.IP {
	if n == 0 {
		return nil
	}
	return net.IPv4(127, 0, 0, byte(2+i%n))
}

// clients returns one client per source address (just one without a spread).
func clients(p Params, idle int) []*http.Client {
	n := max(p.SourceIPs, 1)
	out := make([]*http.Client, n)
	for i := range out {
		out[i] = newClient(sourceIP(i, p.SourceIPs), idle, p.Timeout.D())
	}
	return out
}

// closeIdle releases the clients' idle connections.
func closeIdle(cs ...*http.Client) {
	for _, c := range cs {
		c.CloseIdleConnections()
	}
}

// noteNoFile raises RLIMIT_NOFILE to its hard limit and notes in the summary
// when that is still too low for conns connections (each takes a file
// descriptor here and one in the server).
func noteNoFile(env *loadtest.Env, conns int) {
	soft, err := raiseNoFile()
	switch {
	case err != nil:
		env.Note("could not raise RLIMIT_NOFILE: %v", err)
	case soft < uint64(conns)+64:
		env.Note("RLIMIT_NOFILE is %d, below the %d connections asked for: expect failed connects (raise the hard limit, e.g. ulimit -Hn)", soft, conns)
	}
}
