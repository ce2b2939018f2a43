package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsesync/pulsesync/pgv1"
	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// Default bounds of v1 request bodies (docs/protocol-v1.md §6.1 H7). A chunk carries up to
// 5,000 full rows; every other body is a handful of members.
const (
	DefaultV1MaxBodyBytes  = 1 << 20
	DefaultV1MaxChunkBytes = 64 << 20
)

// V1Config mounts the v1 bundle protocol (docs/protocol-v1.md) beside v0. The zero value of
// every field but Store means its documented default.
type V1Config struct {
	// Store holds the v1 state of every user.
	Store *pgv1.Store
	// AppName is what capabilities and status report as app_name; "" leaves it out.
	AppName string
	// SchemaVersion is capabilities' schema_version; 0 means 1.
	SchemaVersion int
	// Watch serves GET /sync/watch and advertises bundle_change_watch; it needs Config.Push.
	// Off, watch answers 503 bundle_change_watch_disabled and clients poll.
	Watch bool
	// AllowedOrigins are the browser origins CORS admits to the v1 routes; "*" admits any.
	// Empty, the default, serves no CORS headers and no OPTIONS preflight.
	AllowedOrigins []string
	// MaxBodyBytes caps v1 bodies other than chunks; 0 means DefaultV1MaxBodyBytes.
	MaxBodyBytes int64
	// MaxChunkBytes caps a chunk body; 0 means DefaultV1MaxChunkBytes. Config.MaxBodyBytes,
	// the server-wide cap, still applies on top: raise it too for chunks above it.
	MaxChunkBytes int64
	// TestRoutes mounts the reference's test routes (POST /test/retention-floor,
	// GET /test/watch-subscribers, §3.14). For `pulsesync dev` and conformance suites only:
	// they are unauthenticated.
	TestRoutes bool
}

func (c V1Config) withDefaults() V1Config {
	if c.SchemaVersion == 0 {
		c.SchemaVersion = 1
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultV1MaxBodyBytes
	}
	if c.MaxChunkBytes == 0 {
		c.MaxChunkBytes = DefaultV1MaxChunkBytes
	}
	return c
}

func (c V1Config) validate(push bool) error {
	switch {
	case c.Store == nil:
		return errors.New("httpapi config: v1 without a store")
	case c.MaxBodyBytes < 0 || c.MaxChunkBytes < 0:
		return errors.New("httpapi config: negative v1 body limit")
	case c.Watch && !push:
		return errors.New("httpapi config: v1 watch needs the push service")
	}
	return nil
}

// v1API serves the v1 routes of a Server. It shares the server's verifier, logger, metrics,
// fan-out and push service, and owns what only v1 has: the store, the capabilities answer and
// the lifecycle that refuses new operations once shutdown begins.
type v1API struct {
	s       *Server
	cfg     V1Config
	store   *pgv1.Store
	limits  pgv1.Limits
	caps    []byte // the capabilities answer, built once
	metrics *v1Metrics
	watches *watchCounts

	closing  atomic.Bool
	inflight atomic.Int64
}

// newV1API builds the v1 routes' state for s, registering their metrics in registry.
func newV1API(s *Server, cfg V1Config, registry prometheus.Registerer) (*v1API, error) {
	if err := cfg.validate(s.cfg.Push != nil); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newV1Metrics(registry)
	if err != nil {
		return nil, err
	}
	v := &v1API{s: s, cfg: cfg, store: cfg.Store, limits: cfg.Store.Limits(), metrics: m, watches: newWatchCounts()}
	if v.caps, err = v.capabilities(); err != nil {
		return nil, fmt.Errorf("v1 capabilities: %w", err)
	}
	return v, nil
}

// mount adds the v1 routes to r (§2.1). Authentication and the source header are checked,
// in that order, before anything of the request is looked at (§2.5); health, status and the
// test routes are open.
func (v *v1API) mount(r chi.Router) {
	r.Get("/syncx/health", v.health)
	r.Get("/syncx/status", v.status)
	if v.cfg.TestRoutes {
		r.Post("/test/retention-floor", v.setRetentionFloor)
		r.Get("/test/watch-subscribers", v.watchSubscribers)
	}
	routes := []struct {
		method, pattern string
		handler         http.HandlerFunc
	}{
		{http.MethodGet, "/sync/capabilities", v.capabilitiesHandler},
		{http.MethodPost, "/sync/connect", v.connect},
		{http.MethodPost, "/sync/push-sessions", v.createPush},
		{http.MethodPost, "/sync/push-sessions/{push_id}/chunks", v.stageChunk},
		{http.MethodPost, "/sync/push-sessions/{push_id}/commit", v.commitPush},
		{http.MethodDelete, "/sync/push-sessions/{push_id}", v.deletePush},
		{http.MethodGet, "/sync/committed-bundles/{bundle_seq}/rows", v.committedRows},
		{http.MethodGet, "/sync/pull", v.pull},
		{http.MethodPost, "/sync/snapshot-sessions", v.createSnapshot},
		{http.MethodGet, "/sync/snapshot-sessions/{snapshot_id}", v.snapshotChunk},
		{http.MethodDelete, "/sync/snapshot-sessions/{snapshot_id}", v.deleteSnapshot},
		{http.MethodGet, "/sync/watch", v.watch},
	}
	r.Group(func(r chi.Router) {
		if len(v.cfg.AllowedOrigins) > 0 {
			r.Use(v.cors)
			for _, route := range routes {
				r.Options(route.pattern, preflight)
			}
		}
		r.Group(func(r chi.Router) {
			r.Use(v.authenticate)
			for _, route := range routes {
				r.Method(route.method, route.pattern, route.handler)
			}
		})
	})
}

// Shutdown makes the v1 routes refuse every new operation with 503 service_unavailable
// (§2.5, §6.1 M2) and health report shutting_down, while operations already running finish.
// Call it when the node's shutdown begins; it is safe to call more than once.
func (s *Server) Shutdown() {
	if s.v1 != nil {
		s.v1.closing.Store(true)
	}
}

// begin admits one operation, or reports false once shutdown has begun. Call the returned
// end when the operation is done.
func (v *v1API) begin() (end func(), ok bool) {
	if v.closing.Load() {
		return nil, false
	}
	v.inflight.Add(1)
	if v.closing.Load() {
		v.inflight.Add(-1)
		return nil, false
	}
	return func() { v.inflight.Add(-1) }, true
}

// operate runs one v1 store operation for the request's caller. Once shutdown has begun it
// answers 503 service_unavailable and op never runs (§2.5); otherwise the operation counts as
// in flight until op returns, its answer included, and an error op returns is answered by
// storeFailed under endpoint. op writes the answer itself and returns only the store's error.
func (v *v1API) operate(w http.ResponseWriter, r *http.Request, endpoint string, op func(ctx context.Context, c pgv1.Caller) error) {
	end, ok := v.begin()
	if !ok {
		refuseShuttingDown(w)
		return
	}
	defer end()
	if err := op(r.Context(), callerOf(r)); err != nil {
		v.storeFailed(w, r, endpoint, err)
	}
}

// refuseShuttingDown answers an operation that arrives after shutdown began.
func refuseShuttingDown(w http.ResponseWriter) {
	writeV1Error(w, v1ErrorBody{Error: codeServiceUnavailable, Message: msgShuttingDown}, defaultServiceRetrySeconds)
}

type sourceKey struct{}

// sourceOf returns the Oversync-Source-ID that authenticate admitted.
func sourceOf(ctx context.Context) string {
	s, _ := ctx.Value(sourceKey{}).(string)
	return s
}

// sessionID returns the session id the path holds as param, or answers 404 with code and msg
// when it is not a lowercase dashed UUID: the server makes no other ids, so no such session
// can exist.
func sessionID(w http.ResponseWriter, r *http.Request, param, code, msg string) (string, bool) {
	id := chi.URLParam(r, param)
	if !wire.ValidUUID(id) {
		refuse(w, code, msg)
		return "", false
	}
	return id, true
}

// callerOf returns the request's user and source.
func callerOf(r *http.Request) pgv1.Caller {
	return pgv1.Caller{User: identityOf(r.Context()).User, Source: sourceOf(r.Context())}
}

// authenticate checks the Bearer token (401 first, §2.2), then the Oversync-Source-ID header
// (400, §2.3): present once, 1–256 visible ASCII bytes, not a reserved server id. Reserved
// ids get the same message, so the set is not revealed.
func (v *v1API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := v.s.identify(r)
		if err != nil {
			if r.ContentLength != 0 { // a body nobody will read is not waited for
				w.Header().Set("Connection", "close")
			}
			unauthorized(w, err)
			return
		}
		sources := r.Header.Values("Oversync-Source-ID")
		if len(sources) != 1 || !wire.ValidSourceID(sources[0]) || v.store.ReservedSource(sources[0]) {
			refuse(w, codeInvalidRequest, msgInvalidSourceHeader)
			return
		}
		ctx := context.WithValue(context.WithValue(r.Context(), identityKey{}, id), sourceKey{}, sources[0])
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// readV1Body reads a v1 request body within limit. A present body must be JSON: a
// Content-Type other than application/json (parameters allowed) is 415, and none at all is
// taken as JSON. A body over limit is 413 request_too_large. It answers the refusal itself
// and reports false.
func readV1Body(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if r.ContentLength > limit {
		refuse(w, codeRequestTooLarge, fmt.Sprintf("request body is larger than %d bytes", limit))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		refuse(w, codeRequestTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit))
		return nil, false
	case bodyTooSlow(err):
		refuseSlowBody(w)
		return nil, false
	case err != nil:
		refuse(w, codeInvalidRequest, "could not read the request body")
		return nil, false
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && len(body) > 0 {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeV1Error(w, v1ErrorBody{Error: codeUnsupportedMediaType, Message: "request body must be application/json"}, 0)
			return nil, false
		}
	}
	return body, true
}

// cors adds the CORS headers of §2.4 for an allowed Origin: any origin when "*" is allowed.
func (v *v1API) cors(next http.Handler) http.Handler {
	anyOrigin := slices.Contains(v.cfg.AllowedOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && (anyOrigin || slices.Contains(v.cfg.AllowedOrigins, origin)) {
			h := w.Header()
			if anyOrigin {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Add("Vary", "Origin")
			}
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Oversync-Source-ID")
			h.Set("Access-Control-Expose-Headers", "Retry-After")
		}
		next.ServeHTTP(w, r)
	})
}

// preflight answers a CORS preflight: 204, the headers were set by cors.
func preflight(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
