package push

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsesync/pulsesync/sequencer"
)

// Config configures a Service. Hub and CurrentSeq are required; the zero value of every other
// field means its documented default.
type Config struct {
	Hub *Hub
	// CurrentSeq reads the user's last committed seq from the database.
	CurrentSeq func(ctx context.Context, user string) (int64, error)
	// Watch makes sure the user's advances reach Hub from now on (cluster.Node.Watch). It is
	// called before CurrentSeq, so no advance can fall between the read and the subscription.
	// nil = nothing to do (a single node).
	Watch func(ctx context.Context, user string) error

	Heartbeat   time.Duration // WebSocket ping and SSE comment interval, told to clients; 0 = 25 s
	PongTimeout time.Duration // an unanswered ping drops the peer after this; 0 = 10 s
	// WriteTimeout is how long a peer may go without taking bytes: a frame not written in this
	// time, or a notification held back this long because the peer has not acknowledged the
	// previous frame, ends the session; 0 = 10 s.
	WriteTimeout time.Duration
	AuthTimeout  time.Duration // how long a WebSocket may take to send its auth message; 0 = 5 s
	MaxPerUser   int           // live sessions of one user; 0 = 100
	MaxPerNode   int           // live sessions of this node; 0 = 200,000

	Logger   *slog.Logger          // nil discards
	Registry prometheus.Registerer // nil = no metrics
}

func (c Config) withDefaults() Config {
	defaults := []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.Heartbeat, 25 * time.Second}, {&c.PongTimeout, 10 * time.Second}, {&c.WriteTimeout, 10 * time.Second}, {&c.AuthTimeout, 5 * time.Second}}
	for _, d := range defaults {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if c.MaxPerUser <= 0 {
		c.MaxPerUser = 100
	}
	if c.MaxPerNode <= 0 {
		c.MaxPerNode = 200_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Watch == nil {
		c.Watch = func(context.Context, string) error { return nil }
	}
	return c
}

// Service runs the push sessions of one node: it admits connections within the caps, subscribes
// them to the hub, and ends them all on Shutdown.
type Service struct {
	cfg     Config
	hub     *Hub
	metrics *metrics
	// The hot paths' counters, resolved once.
	wsCoalesced, sseCoalesced prometheus.Counter
	// readiness wakes idle WebSockets' readers; nil where it is unavailable.
	readiness *readiness

	mu       sync.Mutex
	perUser  map[string]int
	total    int
	sessions map[*Ticket]func() // live sessions and how to end each on shutdown
	closing  bool
	// readinessDone: the readiness poller is stopped (see stopReadinessIfDone).
	readinessDone bool
}

// NewService returns a Service for cfg.
func NewService(cfg Config) (*Service, error) {
	if cfg.Hub == nil || cfg.CurrentSeq == nil {
		return nil, errors.New("push config: hub and CurrentSeq are required")
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, hub: cfg.Hub, metrics: m, perUser: map[string]int{}, sessions: map[*Ticket]func(){},
		wsCoalesced: m.coalesced.WithLabelValues("ws"), sseCoalesced: m.coalesced.WithLabelValues("sse")}
	if s.readiness, err = newReadiness(); err != nil {
		cfg.Logger.Info("idle WebSockets will each keep a reader goroutine", "err", err)
	}
	return s, nil
}

// Heartbeat is the interval at which sessions show liveness.
func (s *Service) Heartbeat() time.Duration { return s.cfg.Heartbeat }

// Errors of Admit.
var (
	ErrUserLimit    = errors.New("too many live connections for this user")
	ErrNodeLimit    = errors.New("too many live connections on this node")
	ErrShuttingDown = errors.New("the server is shutting down")
)

// Ticket is an admitted session's place under the caps. Release it when the session ends.
type Ticket struct {
	svc       *Service
	user      string
	transport string
	once      sync.Once
}

// Admit reserves a place for a session of user over transport ("ws", "sse" or "longpoll"), or
// says which cap is full. Long-polls count against the same caps as streams.
func (s *Service) Admit(user, transport string) (*Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing:
		return nil, ErrShuttingDown
	case s.total >= s.cfg.MaxPerNode:
		s.metrics.refused.WithLabelValues("node").Inc()
		return nil, ErrNodeLimit
	case s.perUser[user] >= s.cfg.MaxPerUser:
		s.metrics.refused.WithLabelValues("user").Inc()
		return nil, ErrUserLimit
	}
	s.perUser[user]++
	s.total++
	t := &Ticket{svc: s, user: user, transport: transport}
	s.metrics.connections.WithLabelValues(transport).Inc()
	return t, nil
}

// onShutdown registers how to end the ticket's session when the service shuts down. It
// reports false if the service is already shutting down.
func (t *Ticket) onShutdown(end func()) bool {
	s := t.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[t] = end
	return true
}

// Release frees the ticket's place. It is safe to call more than once.
func (t *Ticket) Release() {
	t.once.Do(func() {
		s := t.svc
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.sessions, t)
		s.total--
		s.stopReadinessIfDone()
		if s.perUser[t.user]--; s.perUser[t.user] <= 0 {
			delete(s.perUser, t.user)
		}
		s.metrics.connections.WithLabelValues(t.transport).Dec()
	})
}

// Shutdown refuses new sessions and ends the live ones: WebSockets close with 1012 (service
// restart) so clients reconnect with backoff, SSE streams and long-polls end.
func (s *Service) Shutdown() {
	s.mu.Lock()
	s.closing = true
	ends := make([]func(), 0, len(s.sessions))
	for _, end := range s.sessions {
		ends = append(ends, end)
	}
	s.mu.Unlock()
	for _, end := range ends {
		end()
	}
	s.mu.Lock()
	s.stopReadinessIfDone()
	s.mu.Unlock()
}

// stopReadinessIfDone stops the readiness poller once the service is shutting down and the
// last session has ended: until then closing WebSockets read their peers' answers through it.
// The caller holds s.mu.
func (s *Service) stopReadinessIfDone() {
	if s.closing && s.total == 0 && s.readiness != nil && !s.readinessDone {
		s.readiness.Close()
		s.readinessDone = true
	}
}

// subscribe registers the session with the hub and brings it up to date, in the order that
// loses nothing: watch, subscribe, then read the current seq and feed it in as an advance.
func (s *Service) subscribe(ctx context.Context, o SubscribeOptions) (*Subscription, int64, error) {
	if err := s.cfg.Watch(ctx, o.User); err != nil {
		return nil, 0, err
	}
	sub := s.hub.Subscribe(o)
	seq, err := s.cfg.CurrentSeq(ctx, o.User)
	if err != nil {
		sub.Close()
		return nil, 0, err
	}
	s.hub.Advance(sequencer.Advance{User: o.User, Seq: seq})
	return sub, seq, nil
}

// observeStalled records a session ended because its peer stopped reading.
func (s *Service) observeStalled(transport string) {
	s.metrics.stalled.WithLabelValues(transport).Inc()
}

// observeSent records one notification written to a device.
func (s *Service) observeSent(transport string, since time.Time) {
	s.metrics.sent.WithLabelValues(transport).Inc()
	if !since.IsZero() {
		s.metrics.lag.WithLabelValues(transport).Observe(time.Since(since).Seconds())
	}
}
