package node

import (
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// LimitListener wraps ln so that no client address holds more than HTTPConfig.MaxConnsPerIP
// connections or opens them faster than HTTPConfig.ConnectRate. A connection over either limit
// is refused in the accept loop itself, before net/http spawns a goroutine for it: it gets a
// few bytes of HTTP answer (503 or 429, with Retry-After and the JSON error envelope) and is
// closed, and pulsesync_http_refused_total counts it. Addresses in HTTPConfig.Exempt, and
// connections that are not TCP, pass unlimited.
//
// IPv6 clients are counted by /64, the block one subscriber usually gets, so that stepping
// through addresses does not step around the limit.
//
// Connections handed out keep the TCP connection's methods (SyscallConn, SetKeepAlive, …) but
// are not a *net.TCPConn; their Close frees their place.
func (n *Node) LimitListener(ln net.Listener) net.Listener {
	c := n.edge.cfg
	return &limitListener{
		Listener:  ln,
		edge:      n.edge,
		limitIPs:  c.MaxConnsPerIP > 0,
		limitRate: c.ConnectRate > 0 && c.ConnectBurst > 0,
		peers:     map[netip.Addr]*peer{},
		lingers:   make(chan struct{}, maxLingering),
	}
}

// sweepEvery is how often the listener forgets addresses without connections whose bucket
// has filled up again.
const sweepEvery = 10 * time.Second

// maxLingering caps the refused connections drained at once (see refuse); beyond it they are
// closed at once, which may reset them before the client read its answer.
const maxLingering = 64

// lingerFor is how long a refused connection is drained, so that the client reads its answer
// rather than a reset.
const lingerFor = 500 * time.Millisecond

type limitListener struct {
	net.Listener
	edge      httpEdge
	limitIPs  bool
	limitRate bool
	lingers   chan struct{} // a semaphore of the refusals being drained

	mu        sync.Mutex
	peers     map[netip.Addr]*peer
	lastSweep time.Time
}

// peer is one client address: its open connections and its token bucket of new ones.
type peer struct {
	conns  int
	tokens float64   // connections it may open now
	at     time.Time // when tokens was last brought up to date
}

// Accept returns the next connection within the limits, refusing those over them.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, ok := conn.(*net.TCPConn)
		if !ok {
			return conn, nil
		}
		key, limited := l.keyOf(tc)
		if !limited {
			return conn, nil
		}
		reason, retryAfter := l.admit(key, time.Now())
		if reason == "" {
			return &limitedConn{TCPConn: tc, l: l, key: key}, nil
		}
		l.edge.refused.WithLabelValues(reason).Inc()
		l.refuse(tc, reason, retryAfter)
	}
}

// keyOf returns the address conn is counted under, and false when it is not counted.
func (l *limitListener) keyOf(conn *net.TCPConn) (netip.Addr, bool) {
	if !l.limitIPs && !l.limitRate {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}, false
	}
	addr := ap.Addr().Unmap()
	for _, p := range l.edge.cfg.Exempt {
		if p.Contains(addr) {
			return netip.Addr{}, false
		}
	}
	if addr.Is6() {
		block, _ := addr.Prefix(64)
		addr = block.Addr()
	}
	return addr, true
}

// admit takes a place and a token for key, or says why not and when to retry (seconds).
func (l *limitListener) admit(key netip.Addr, now time.Time) (reason string, retryAfter int) {
	c := l.edge.cfg
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.sweep(now)
	}
	p := l.peers[key]
	if p == nil {
		p = &peer{tokens: float64(c.ConnectBurst), at: now}
		l.peers[key] = p
	}
	if l.limitRate {
		p.refill(now, c)
	}
	switch {
	case l.limitIPs && p.conns >= c.MaxConnsPerIP:
		return refusedIPConnections, 5
	case l.limitRate && p.tokens < 1:
		return refusedConnectRate, int(math.Ceil((1 - p.tokens) / c.ConnectRate))
	}
	if l.limitRate {
		p.tokens--
	}
	p.conns++
	return "", 0
}

// refill adds the tokens earned since p.at, up to the burst.
func (p *peer) refill(now time.Time, c HTTPConfig) {
	p.tokens = min(float64(c.ConnectBurst), p.tokens+now.Sub(p.at).Seconds()*c.ConnectRate)
	p.at = now
}

// sweep forgets the addresses that hold no connection and whose bucket is full again: a new
// entry for them would be the same. l.mu is held.
func (l *limitListener) sweep(now time.Time) {
	c := l.edge.cfg
	for key, p := range l.peers {
		if p.conns > 0 {
			continue
		}
		if l.limitRate {
			p.refill(now, c)
			if p.tokens < float64(c.ConnectBurst) {
				continue
			}
		}
		delete(l.peers, key)
	}
	l.lastSweep = now
}

// release frees a place of key.
func (l *limitListener) release(key netip.Addr) {
	l.mu.Lock()
	if p := l.peers[key]; p != nil {
		p.conns--
	}
	l.mu.Unlock()
}

// refuse answers a refused connection and closes it. Closing a socket with unread bytes (the
// client's request) resets it, and a reset can overtake the answer; so, while few refusals are
// pending, the answer is followed by a half-close and the request is drained for a moment.
// Beyond maxLingering the connection is closed at once: under a flood, shedding it matters
// more than its answer.
func (l *limitListener) refuse(conn *net.TCPConn, reason string, retryAfter int) {
	answer := refusal(reason, retryAfter)
	_ = conn.SetDeadline(time.Now().Add(lingerFor))
	if _, err := conn.Write(answer); err != nil {
		conn.Close()
		return
	}
	select {
	case l.lingers <- struct{}{}:
	default:
		conn.Close()
		return
	}
	go func() {
		defer func() { <-l.lingers }()
		defer conn.Close()
		_ = conn.CloseWrite()
		var drain [512]byte
		for {
			if _, err := conn.Read(drain[:]); err != nil {
				return // the client closed, or lingerFor passed
			}
		}
	}()
}

// refusal is the HTTP answer of a refused connection.
func refusal(reason string, retryAfter int) []byte {
	status, message := "503 Service Unavailable", "too many connections from your address"
	if reason == refusedConnectRate {
		status, message = "429 Too Many Requests", "too many new connections from your address"
	}
	body := `{"error":"too_many_connections","message":"` + message + `"}` + "\n"
	return []byte("HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nRetry-After: " + strconv.Itoa(max(retryAfter, 1)) +
		"\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// limitedConn is an admitted connection; closing it frees its place once.
type limitedConn struct {
	*net.TCPConn
	l    *limitListener
	key  netip.Addr
	once sync.Once
}

// Close closes the connection and frees its place.
func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.key) })
	return c.TCPConn.Close()
}
