package httpapi

import (
	"context"
	"net/http"
)

// v1StatusBody is the object GET /syncx/health and GET /syncx/status answer
// (docs/protocol-v1.md §3.13), the subset of this node's state.
type v1StatusBody struct {
	Status              string          `json:"status"`
	Version             string          `json:"version"`
	AppName             string          `json:"app_name"`
	Lifecycle           string          `json:"lifecycle"`
	AcceptingOperations bool            `json:"accepting_operations"`
	InflightOperations  int64           `json:"inflight_operations"`
	RegisteredTables    []string        `json:"registered_tables"`
	Features            map[string]bool `json:"features"`
}

// nodeStatus reports this node's v1 state. It is healthy while it accepts operations, its
// database answers within readyTimeout (§3.13).
func (v *v1API) nodeStatus(r *http.Request) v1StatusBody {
	closing := v.closing.Load()
	st := v1StatusBody{Status: "healthy", Version: v1ProtocolVersion, AppName: v.cfg.AppName,
		Lifecycle: "running", AcceptingOperations: !closing, InflightOperations: v.inflight.Load(),
		RegisteredTables: v.registeredTables(), Features: v.features()}
	if closing {
		st.Status, st.Lifecycle = "unhealthy", "shutting_down"
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := v.s.store.Ping(ctx); err != nil {
		v.s.serverError(r, "v1 status failed", err)
		st.Status = "unhealthy"
	}
	return st
}

// health serves GET /syncx/health: the status object, 200 when healthy, 503 otherwise.
func (v *v1API) health(w http.ResponseWriter, r *http.Request) {
	st := v.nodeStatus(r)
	w.Header().Set("Content-Type", "application/json")
	if st.Status != "healthy" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	writeJSON(w, st)
}

// status serves GET /syncx/status: the same object, always 200.
func (v *v1API) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, v.nodeStatus(r))
}
