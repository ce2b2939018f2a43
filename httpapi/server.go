package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pulsesync/pulsesync/httpapi/auth"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

// DefaultMaxBodyBytes is the default cap on a request body. Sep-2025 KMP clients send their whole
// pending queue in one upload, and one answered 413 resends the same request forever
// (docs/protocol-v0.md §9.3 #5), so the cap is far above any batch a device accumulates offline.
const DefaultMaxBodyBytes = 32 << 20

// DefaultDevTokenTTL is the lifetime of the tokens /dummy-signin issues, as in the reference.
const DefaultDevTokenTTL = 300 * time.Second

// Config configures a Server. Store and Verifier are required; the zero value of every other
// field means its documented default.
type Config struct {
	// Store holds the sync state every handler reads and writes.
	Store *pg.Store
	// Verifier checks the Bearer tokens of the authenticated endpoints.
	Verifier *auth.Verifier
	// MaxBodyBytes caps every request body: an upload over it is answered 413
	// request_too_large, other endpoints find its body cut short. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// SchemaVersion is what GET /sync/schema-version reports; 0 means 1, the value of every
	// reference setup.
	SchemaVersion int
	// DevSignIn mounts POST /dummy-signin, which gives anyone a token for any user (docs/protocol-v0.md
	// §1.5). nil, the default, leaves it out: it is for `pulsesync dev` and tests only.
	DevSignIn *DevSignIn
	// Logger receives one line per request (debug below 500, warn from 500) and the causes of
	// 5xx answers. nil discards them.
	Logger *slog.Logger
	// Registry receives the server's metrics and is what GET /metrics serves. nil means a
	// private registry that also holds the Go runtime and process collectors.
	Registry *prometheus.Registry
	// Push serves GET /sync/ws, GET /sync/events and long-polls (download with wait=S); nil
	// leaves them out, and wait is then ignored.
	Push *push.Service
	// Fanout announces each upload's advance after commit and makes sure this node hears the
	// advances of users it caches; nil means a node alone, with nobody else to tell.
	Fanout Fanout
	// Watermarks lets empty polls be answered from memory while they are known current; nil
	// sends every download to the database.
	Watermarks *sequencer.Watermarks
	// Deadlines bound how slowly a client may send its body and read its answer.
	Deadlines Deadlines
	// V1 mounts the v1 bundle protocol (docs/protocol-v1.md) beside v0; nil leaves it out.
	V1 *V1Config
}

// DevSignIn configures the development sign-in endpoint.
type DevSignIn struct {
	// Secret signs the issued HS256 tokens; the Verifier must accept it.
	Secret []byte
	// TTL is the issued tokens' lifetime; 0 means DefaultDevTokenTTL.
	TTL time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.SchemaVersion == 0 {
		c.SchemaVersion = 1
	}
	if c.DevSignIn != nil && c.DevSignIn.TTL == 0 {
		d := *c.DevSignIn
		d.TTL = DefaultDevTokenTTL
		c.DevSignIn = &d
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Fanout == nil {
		c.Fanout = loneNode{}
	}
	c.Deadlines = c.Deadlines.withDefaults()
	return c
}

// loneNode is the Fanout of a server without push or cache: nothing to announce to, nothing
// to watch.
type loneNode struct{}

func (loneNode) Announce(sequencer.Advance)          {}
func (loneNode) Watch(context.Context, string) error { return nil }
func (loneNode) Healthy() bool                       { return true }

func (c Config) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("httpapi config: no store")
	case c.Verifier == nil:
		return errors.New("httpapi config: no token verifier")
	case c.MaxBodyBytes < 0:
		return errors.New("httpapi config: negative body limit")
	case c.DevSignIn != nil && len(c.DevSignIn.Secret) == 0:
		return errors.New("httpapi config: dev sign-in without a secret")
	case (c.Push != nil || c.Watermarks != nil) && c.Fanout == nil:
		return errors.New("httpapi config: push sessions and the watermark cache need a fanout to feed them")
	}
	return nil
}

// Server is the HTTP edge of one pulsesync node. It holds no goroutines of its own; the
// http.Server that serves Handler owns the request goroutines.
type Server struct {
	cfg     Config
	store   *pg.Store
	log     *slog.Logger
	metrics *metrics
	router  chi.Router
	v1      *v1API    // nil without Config.V1
	bufs    sync.Pool // *[]byte response buffers of the hand-encoded answers
	// streamDown remembers that /ready saw the fan-out down, so that it logs the change once.
	streamDown atomic.Bool
}

// New checks cfg, registers the server's metrics in cfg.Registry and builds the router. It fails
// when cfg lacks a store or verifier, or when the registry already holds these metrics.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger}
	registry := cfg.Registry
	if registry == nil {
		registry = prometheus.NewRegistry()
		registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m, err := newMetrics(registry, cfg.Store)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if cfg.V1 != nil {
		if s.v1, err = newV1API(s, *cfg.V1, registry); err != nil {
			return nil, err
		}
	}
	s.router = s.routes(registry)
	if err := m.exportServerErrors(s.router); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the server's routes with their middleware.
func (s *Server) Handler() http.Handler { return s.router }

// routes builds the router. Middleware order, outermost first: request id, observation (log line
// and metrics, so they see the final status), panic recovery, deadlines, body cap.
func (s *Server) routes(registry *prometheus.Registry) chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.observe, s.recoverPanics, s.deadlines, s.limitBody)
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed(r))

	r.Get("/health", health)
	r.Get("/ready", s.ready)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	if s.cfg.DevSignIn != nil {
		r.Post("/dummy-signin", s.devSignIn)
	}

	// Everything below needs a valid token, checked before the body or the query is looked at
	// (docs/protocol-v0.md §1.4). chi routes first, so a wrong method or path is 405/404 without one.
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate)
		r.Post("/sync/upload", s.upload)
		r.Get("/sync/download", s.download)
		r.Get("/sync/schema-version", s.schemaVersion)
		r.Get("/admin/materialize-failures", s.listFailures)
		r.Post("/admin/materialize-failures/retry", s.retryFailure)
		if s.cfg.Push != nil {
			r.Get("/sync/events", s.events)
		}
	})
	if s.v1 != nil {
		s.v1.mount(r)
	}
	if s.cfg.Push != nil {
		// Browsers cannot set headers on a WebSocket: the token may come in the first message
		// instead, so this route checks the header itself when there is one.
		r.Get("/sync/ws", s.websocket)
	}
	return r
}
