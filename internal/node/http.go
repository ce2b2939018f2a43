package node

import (
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsesync/pulsesync/httpapi"
	"github.com/pulsesync/pulsesync/push"
)

// Defaults of HTTPConfig. SECURITY.md lists them with the reasons for each.
const (
	// DefaultReadHeaderTimeout bounds the reading of a request's line and headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultMaxHeaderBytes caps a request's line and headers: a token is about 1 KiB, so
	// this is room for a long one with every proxy header besides.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultIdleTimeout closes a keep-alive connection that sends no next request.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultMaxConnsPerIP caps the open connections of one client address.
	DefaultMaxConnsPerIP = 256
	// DefaultConnectRate is how many new connections per second one client address may open
	// once its burst is spent.
	DefaultConnectRate = 50
	// DefaultConnectBurst is how many connections one client address may open at once.
	DefaultConnectBurst = 100
)

// HTTPConfig bounds what one client can hold of a node: its connections, the time it may take
// to send a request and to read the answer. The zero value of each field means its default; a
// negative value switches that bound off. `pulsesync serve`, `pulsesync dev` and the test
// harness all build their servers from it, through Node.HTTPServer and Node.Listen.
type HTTPConfig struct {
	// ReadHeaderTimeout bounds the reading of a request's line and headers; 0 means
	// DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes caps a request's line and headers (larger ones are answered 431); 0
	// means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// IdleTimeout closes a keep-alive connection idle this long between requests; 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Deadlines bound the request body's pace and the writing of answers (httpapi.Deadlines).
	Deadlines httpapi.Deadlines
	// MaxConnsPerIP caps the open connections of one client address (an IPv6 client's /64);
	// a connection over it is answered 503 with Retry-After and closed before any handler
	// runs. 0 means DefaultMaxConnsPerIP.
	MaxConnsPerIP int
	// ConnectRate is how many connections per second one client address may open after its
	// ConnectBurst; a connection over it is answered 429 with Retry-After and closed. 0 means
	// DefaultConnectRate.
	ConnectRate float64
	// ConnectBurst is how many connections one client address may open at once; 0 means
	// DefaultConnectBurst.
	ConnectBurst int
	// Exempt lists client addresses that MaxConnsPerIP and ConnectRate do not apply to, such
	// as the load balancer's when all clients arrive through it. None by default, loopback
	// included.
	Exempt []netip.Prefix
}

func (c HTTPConfig) withDefaults() HTTPConfig {
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.ConnectRate == 0 {
		c.ConnectRate = DefaultConnectRate
	}
	if c.ConnectBurst == 0 {
		c.ConnectBurst = DefaultConnectBurst
	}
	return c
}

// off turns a negative setting into net/http's "no limit", zero.
func off[T int | time.Duration](v T) T { return max(v, 0) }

// httpEdge is what a node keeps for the servers and listeners it hands out.
type httpEdge struct {
	cfg      HTTPConfig
	refused  *prometheus.CounterVec // reason
	errorLog *log.Logger
}

// Reasons of pulsesync_http_refused_total.
const (
	refusedIPConnections = "ip_connections"
	refusedConnectRate   = "connect_rate"
)

// newHTTPEdge applies cfg's defaults and registers the refusal counter in registry.
func newHTTPEdge(cfg HTTPConfig, logger *slog.Logger, registry prometheus.Registerer) (httpEdge, error) {
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pulsesync_http_refused_total",
		Help: "Connections refused before any handler ran, by reason (ip_connections, connect_rate).",
	}, []string{"reason"})
	for _, reason := range []string{refusedIPConnections, refusedConnectRate} {
		refused.WithLabelValues(reason) // export zeros before the first refusal
	}
	if err := registry.Register(refused); err != nil {
		return httpEdge{}, fmt.Errorf("register metrics: %w", err)
	}
	return httpEdge{cfg: cfg.withDefaults(), refused: refused, errorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}, nil
}

// HTTPServer returns an http.Server for the node's Handler with the node's HTTPConfig: header
// and idle timeouts and the header cap, and push's connection hook (push.ConnContext). It has no WriteTimeout, which would cut streams and
// long-polls; their writes, and ordinary answers, get deadlines from httpapi.Deadlines. The
// node's Shutdown is registered to run on the server's. Serve it on a listener from Listen or
// LimitListener.
func (n *Node) HTTPServer() *http.Server {
	c := n.edge.cfg
	srv := &http.Server{
		Handler:           n.handler,
		ReadHeaderTimeout: off(c.ReadHeaderTimeout),
		MaxHeaderBytes:    off(c.MaxHeaderBytes),
		IdleTimeout:       off(c.IdleTimeout),
		ErrorLog:          n.edge.errorLog,
		ConnContext:       push.ConnContext,
	}
	srv.RegisterOnShutdown(n.Shutdown)
	return srv
}

// Listen opens a TCP listener on addr with the node's per-address limits (LimitListener).
func (n *Node) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return n.LimitListener(ln), nil
}
