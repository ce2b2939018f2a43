package httpapi

import (
	"context"
	"net/http"
	"time"
)

// readyTimeout bounds the database check of GET /ready, so a hung database makes the probe fail
// instead of hang.
const readyTimeout = 2 * time.Second

// health serves GET /health, the liveness probe: the process answers, nothing else is checked.
func health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]string{"status": "healthy"})
}

// ready serves GET /ready, the readiness probe: 200 when the database answers and the fan-out's
// advance stream is up, 503 not_ready otherwise. Without the stream the node still works, but
// its devices hear of other nodes' changes only at the next reconciliation, so a load balancer
// should prefer other nodes. The stream going down is logged once, at warn, by the first probe
// that sees it.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.serverError(r, "readiness check failed", err)
		writeError(w, http.StatusServiceUnavailable, codeNotReady, "database unreachable")
		return
	}
	if !s.cfg.Fanout.Healthy() {
		if !s.streamDown.Swap(true) {
			s.log.Warn("not ready: the fan-out's advance stream is down")
		}
		writeError(w, http.StatusServiceUnavailable, codeNotReady, "fan-out stream down")
		return
	}
	if s.streamDown.Swap(false) {
		s.log.Info("ready again: the fan-out's advance stream is up")
	}
	writeJSON(w, map[string]string{"status": "ready"})
}

// schemaVersion serves GET /sync/schema-version (docs/protocol-v0.md §5).
func (s *Server) schemaVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, struct {
		SchemaVersion int `json:"schema_version"`
	}{s.cfg.SchemaVersion})
}
