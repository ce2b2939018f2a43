package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/pulsesync/pulsesync/pgv1"
)

// v1ProtocolVersion is the only protocol_version SQLiteNow accepts (docs/protocol-v1.md §3.1).
const v1ProtocolVersion = "v1"

// v1Capabilities is the answer of GET /sync/capabilities, member for member as §3.1 and the
// worked example of §7 step 0 give it.
type v1Capabilities struct {
	ProtocolVersion      string          `json:"protocol_version"`
	SchemaVersion        int             `json:"schema_version"`
	AppName              string          `json:"app_name,omitempty"`
	RegisteredTables     []string        `json:"registered_tables"`
	RegisteredTableSpecs []v1TableSpec   `json:"registered_table_specs"`
	Features             map[string]bool `json:"features"`
	BundleLimits         v1BundleLimits  `json:"bundle_limits"`
}

type v1TableSpec struct {
	Schema         string   `json:"schema"`
	Table          string   `json:"table"`
	SyncKeyColumns []string `json:"sync_key_columns"`
}

// v1BundleLimits is §3.1's bundle_limits. The session bounds are left out when unlimited, as
// the reference does; rows and bytes per bundle are not capped at all (§6), so never sent.
type v1BundleLimits struct {
	MaxBundlesPerPull                  int   `json:"max_bundles_per_pull"`
	DefaultRowsPerPushChunk            int   `json:"default_rows_per_push_chunk"`
	MaxRowsPerPushChunk                int   `json:"max_rows_per_push_chunk"`
	PushSessionTTLSeconds              int   `json:"push_session_ttl_seconds"`
	DefaultRowsPerCommittedBundleChunk int   `json:"default_rows_per_committed_bundle_chunk"`
	MaxRowsPerCommittedBundleChunk     int   `json:"max_rows_per_committed_bundle_chunk"`
	DefaultRowsPerSnapshotChunk        int   `json:"default_rows_per_snapshot_chunk"`
	MaxRowsPerSnapshotChunk            int   `json:"max_rows_per_snapshot_chunk"`
	SnapshotSessionTTLSeconds          int   `json:"snapshot_session_ttl_seconds"`
	DefaultBytesPerSnapshotChunk       int64 `json:"default_bytes_per_snapshot_chunk"`
	MaxBytesPerSnapshotChunk           int64 `json:"max_bytes_per_snapshot_chunk"`
	MaxBytesPerSnapshotRow             int64 `json:"max_bytes_per_snapshot_row"`
	SnapshotMaterializationBatchRows   int   `json:"snapshot_materialization_batch_rows"`
	SnapshotMaterializationBatchBytes  int64 `json:"snapshot_materialization_batch_bytes"`
	MaxConcurrentSnapshotBuilds        int   `json:"max_concurrent_snapshot_builds"`
	MaxConcurrentSnapshotChunkRequests int   `json:"max_concurrent_snapshot_chunk_requests"`
	InitializationLeaseTTLSeconds      int   `json:"initialization_lease_ttl_seconds"`
	MaxRowsPerSnapshotSession          int64 `json:"max_rows_per_snapshot_session,omitempty"`
	MaxBytesPerSnapshotSession         int64 `json:"max_bytes_per_snapshot_session,omitempty"`
}

// v1FixedFeatures are the features every v1 deployment has (§3.1); bundle_change_watch
// depends on the configuration and is added beside them.
var v1FixedFeatures = map[string]bool{
	"accepted_push_replay_visibility":     true,
	"bundle_pull":                         true,
	"bundle_push":                         true,
	"capabilities_endpoint":               true,
	"committed_bundle_row_fetch":          true,
	"committed_bundle_visibility":         true,
	"connect_lifecycle":                   true,
	"graceful_shutdown":                   true,
	"history_pruned_errors":               true,
	"history_pruned_visibility":           true,
	"push_session_chunking":               true,
	"registered_write_rejection_enforced": true,
	"retained_floor_visibility":           true,
	"retained_window_visibility":          true,
	"scope_initialization_leases":         true,
	"server_checkpoint_tracking":          false,
	"snapshot_chunking":                   true,
	"status_endpoint":                     true,
	"structured_sync_keys":                true,
}

// features returns the feature flags of this deployment.
func (v *v1API) features() map[string]bool {
	f := make(map[string]bool, len(v1FixedFeatures)+1)
	for name, on := range v1FixedFeatures {
		f[name] = on
	}
	f["bundle_change_watch"] = v.cfg.Watch
	return f
}

// registeredTables returns the "schema.table" names of the registered tables, sorted.
func (v *v1API) registeredTables() []string {
	specs := v.store.Specs()
	names := make([]string, len(specs))
	for i, t := range specs {
		names[i] = t.Schema + "." + t.Table
	}
	return names
}

// capabilities builds the capabilities answer once, at start: it depends on configuration
// only, so clients, which ask before every operation, never reach the database (§3.1 "Cost").
// It refuses limits a client would reject: a client fails every operation on them.
func (v *v1API) capabilities() ([]byte, error) {
	l := v.limits
	switch {
	case l.MaxBytesPerSnapshotRow > pgv1.MaxBytesPerSnapshotChunk:
		return nil, fmt.Errorf("max bytes per snapshot row %d is above the chunk maximum %d", l.MaxBytesPerSnapshotRow, pgv1.MaxBytesPerSnapshotChunk)
	case l.MaxRowsPerPushChunk <= 0 || l.MaxConcurrentSnapshotBuilds <= 0 || l.MaxConcurrentSnapshotChunks <= 0 || l.MaxBytesPerSnapshotRow <= 0:
		return nil, fmt.Errorf("store limits must be positive: %+v", l)
	}
	specs := v.store.Specs()
	out := v1Capabilities{
		ProtocolVersion:      v1ProtocolVersion,
		SchemaVersion:        v.cfg.SchemaVersion,
		AppName:              v.cfg.AppName,
		RegisteredTables:     v.registeredTables(),
		RegisteredTableSpecs: make([]v1TableSpec, len(specs)),
		Features:             v.features(),
		BundleLimits: v1BundleLimits{
			MaxBundlesPerPull:                  pgv1.MaxBundlesPerPull,
			DefaultRowsPerPushChunk:            min(pgv1.DefaultRowsPerPushChunk, l.MaxRowsPerPushChunk),
			MaxRowsPerPushChunk:                l.MaxRowsPerPushChunk,
			PushSessionTTLSeconds:              l.PushSessionTTLSeconds,
			DefaultRowsPerCommittedBundleChunk: pgv1.DefaultRowsPerCommittedBundleChunk,
			MaxRowsPerCommittedBundleChunk:     pgv1.MaxRowsPerCommittedBundleChunk,
			DefaultRowsPerSnapshotChunk:        pgv1.DefaultRowsPerSnapshotChunk,
			MaxRowsPerSnapshotChunk:            pgv1.MaxRowsPerSnapshotChunk,
			SnapshotSessionTTLSeconds:          l.SnapshotSessionTTLSeconds,
			DefaultBytesPerSnapshotChunk:       pgv1.DefaultBytesPerSnapshotChunk,
			MaxBytesPerSnapshotChunk:           pgv1.MaxBytesPerSnapshotChunk,
			MaxBytesPerSnapshotRow:             l.MaxBytesPerSnapshotRow,
			SnapshotMaterializationBatchRows:   pgv1.SnapshotMaterializationBatchRows,
			SnapshotMaterializationBatchBytes:  pgv1.SnapshotMaterializationBatchBytes,
			MaxConcurrentSnapshotBuilds:        l.MaxConcurrentSnapshotBuilds,
			MaxConcurrentSnapshotChunkRequests: l.MaxConcurrentSnapshotChunks,
			InitializationLeaseTTLSeconds:      l.InitializationLeaseTTL,
			MaxRowsPerSnapshotSession:          l.MaxRowsPerSnapshot,
			MaxBytesPerSnapshotSession:         l.MaxBytesPerSnapshot,
		},
	}
	for i, t := range specs {
		if t.KeyColumn == "" {
			return nil, fmt.Errorf("table %s.%s has no sync key column", t.Schema, t.Table)
		}
		out.RegisteredTableSpecs[i] = v1TableSpec{Schema: t.Schema, Table: t.Table, SyncKeyColumns: []string{t.KeyColumn}}
	}
	return json.Marshal(out)
}

// capabilitiesHandler serves GET /sync/capabilities from the answer built at start.
func (v *v1API) capabilitiesHandler(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(v.caps)))
	_, _ = w.Write(v.caps)
}
