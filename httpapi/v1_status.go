package httpapi

import (
	"context"
	"net/http"
)

// v1StatusBody is the object GET /syncx/health and GET /syncx/status answer
// (docs/protocol-v1.md §3.13). The event counters are this process's since it started (see
// pgv1.Status), the floor and sequence figures cover every user.
type v1StatusBody struct {
	Status              string          `json:"status"`
	Version             string          `json:"version"`
	AppName             string          `json:"app_name"`
	Lifecycle           string          `json:"lifecycle"`
	AcceptingOperations bool            `json:"accepting_operations"`
	InflightOperations  int64           `json:"inflight_operations"`
	RegisteredTables    []string        `json:"registered_tables"`
	Features            map[string]bool `json:"features"`

	UserStateRetentionFloorAheadCount int64 `json:"user_state_retention_floor_ahead_count"`
	LatestBundleSeqMax                int64 `json:"latest_bundle_seq_max"`
	RetainedBundleFloorMin            int64 `json:"retained_bundle_floor_min"`
	RetainedBundleFloorMax            int64 `json:"retained_bundle_floor_max"`
	RetainedBundleWindowMin           int64 `json:"retained_bundle_window_min"`
	RetainedBundleWindowMax           int64 `json:"retained_bundle_window_max"`
	HistoryPrunedErrorCount           int64 `json:"history_pruned_error_count"`
	AcceptedPushReplayCount           int64 `json:"accepted_push_replay_count"`
	RejectedRegisteredWriteCount      int64 `json:"rejected_registered_write_count"`
	CommittedBundleCount              int64 `json:"committed_bundle_count"`
	CommittedBundleBytes              int64 `json:"committed_bundle_bytes"`
}

// nodeStatus reports this node's v1 state. It is healthy while it accepts operations, its
// database answers within readyTimeout and no user's retained floor is ahead of its history
// (§3.13).
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
	c, err := v.store.Status(ctx)
	if err != nil {
		v.s.serverError(r, "v1 status failed", err)
		st.Status = "unhealthy"
		return st
	}
	if c.RetentionFloorAheadCount > 0 {
		st.Status = "unhealthy"
	}
	st.UserStateRetentionFloorAheadCount = c.RetentionFloorAheadCount
	st.LatestBundleSeqMax = c.LatestBundleSeqMax
	st.RetainedBundleFloorMin, st.RetainedBundleFloorMax = c.RetainedBundleFloorMin, c.RetainedBundleFloorMax
	st.RetainedBundleWindowMin, st.RetainedBundleWindowMax = c.RetainedBundleWindowMin, c.RetainedBundleWindowMax
	st.HistoryPrunedErrorCount = c.HistoryPrunedErrorCount
	st.AcceptedPushReplayCount = c.AcceptedPushReplayCount
	st.RejectedRegisteredWriteCount = c.RejectedRegisteredWriteCount
	st.CommittedBundleCount, st.CommittedBundleBytes = c.CommittedBundleCount, c.CommittedBundleBytes
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
