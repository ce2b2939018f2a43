package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/pulsesync/pulsesync/pgv1"
	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// v1Status maps every error code of the v1 protocol to its HTTP status (docs/protocol-v1.md
// §2.5, §3). The store names refusals by code only; this table is the one place that turns
// them into statuses. A code missing here is a bug and is answered as a server failure.
var v1Status = map[string]int{
	codeInvalidRequest:                http.StatusBadRequest,
	"connect_invalid":                 http.StatusBadRequest,
	"push_session_invalid":            http.StatusBadRequest,
	"push_chunk_invalid":              http.StatusBadRequest,
	"push_commit_invalid":             http.StatusBadRequest,
	"committed_bundle_chunk_invalid":  http.StatusBadRequest,
	"snapshot_session_invalid":        http.StatusBadRequest,
	"snapshot_chunk_invalid":          http.StatusBadRequest,
	"snapshot_chunk_too_small":        http.StatusBadRequest,
	"push_session_forbidden":          http.StatusForbidden,
	"snapshot_session_forbidden":      http.StatusForbidden,
	"bundle_change_watch_forbidden":   http.StatusForbidden,
	"push_session_not_found":          http.StatusNotFound,
	"committed_bundle_not_found":      http.StatusNotFound,
	"snapshot_session_not_found":      http.StatusNotFound,
	"user_state_not_found":            http.StatusNotFound,
	"scope_uninitialized":             http.StatusConflict,
	"scope_initializing":              http.StatusConflict,
	"initialization_stale":            http.StatusConflict,
	"source_retired":                  http.StatusConflict,
	"history_pruned":                  http.StatusConflict,
	"checkpoint_ahead":                http.StatusConflict,
	"source_sequence_out_of_order":    http.StatusConflict,
	"source_sequence_changed":         http.StatusConflict,
	"push_chunk_out_of_order":         http.StatusConflict,
	"push_conflict":                   http.StatusConflict,
	"source_replacement_invalid":      http.StatusConflict,
	"snapshot_session_limit_exceeded": http.StatusConflict,
	"initialization_expired":          http.StatusGone,
	"push_session_expired":            http.StatusGone,
	"snapshot_session_expired":        http.StatusGone,
	codeRequestTooLarge:               http.StatusRequestEntityTooLarge,
	codeUnsupportedMediaType:          http.StatusUnsupportedMediaType,
	"snapshot_build_capacity":         http.StatusTooManyRequests,
	"snapshot_chunk_capacity":         http.StatusTooManyRequests,
	codeTooManyConnections:            http.StatusTooManyRequests,
	codeServiceUnavailable:            http.StatusServiceUnavailable,
	"commit_outcome_unknown":          http.StatusServiceUnavailable,
	"bundle_change_watch_disabled":    http.StatusServiceUnavailable,
}

// v1 error codes this layer produces itself.
const (
	codeServiceUnavailable     = "service_unavailable"
	codeUnsupportedMediaType   = "unsupported_media_type"
	codeSourceRetiredInvalid   = "source_retired_invalid"
	msgSourceRetired           = "source is retired" // the July reference's exact text (§2.5)
	msgInvalidSourceHeader     = "Oversync-Source-ID header must be a non-empty visible ASCII token"
	msgShuttingDown            = "the server is shutting down"
	defaultServiceRetrySeconds = 1
)

// v1ErrorBody is the JSON envelope of a v1 error with its structured members (§2.5). At most
// one group of the optional members is set; omitempty keeps the others out.
type v1ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`

	Conflict *v1Conflict `json:"conflict,omitempty"`

	SourceID           string `json:"source_id,omitempty"`
	ReplacedBySourceID string `json:"replaced_by_source_id,omitempty"`

	Dimension string `json:"dimension,omitempty"`
	Actual    int64  `json:"actual,omitempty"`
	Limit     int64  `json:"limit,omitempty"`

	RequiredByteCount int64 `json:"required_byte_count,omitempty"`
}

// v1Conflict is the conflict member of push_conflict (§3.5 step 7). server_row is always
// present, null when the row is absent or deleted.
type v1Conflict struct {
	Schema           string          `json:"schema"`
	Table            string          `json:"table"`
	Key              json.RawMessage `json:"key"`
	Op               string          `json:"op"`
	BaseRowVersion   int64           `json:"base_row_version"`
	ServerRowVersion int64           `json:"server_row_version"`
	ServerRowDeleted bool            `json:"server_row_deleted"`
	ServerRow        json.RawMessage `json:"server_row"`
}

// writeV1Error answers a refusal with code's status and body; retryAfter > 0 adds the
// Retry-After header (429 and 503 answers).
func writeV1Error(w http.ResponseWriter, body v1ErrorBody, retryAfter int) {
	status, ok := v1Status[body.Error]
	if !ok {
		status = http.StatusInternalServerError
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// refuse answers a refusal of this layer's own (a bad query, a bad body).
func refuse(w http.ResponseWriter, code, message string) {
	writeV1Error(w, v1ErrorBody{Error: code, Message: message}, 0)
}

// storeFailed answers the error the store returned for an operation of endpoint (the code
// prefix of its 500, e.g. "pull" → pull_failed). A *pgv1.Error is answered with its code's
// status and structured members; anything else, or a code this layer does not know, is a 500
// <endpoint>_failed whose cause goes to the log, never to the client.
func (v *v1API) storeFailed(w http.ResponseWriter, r *http.Request, endpoint string, err error) {
	var pe *pgv1.Error
	if !errors.As(err, &pe) {
		v.s.serverError(r, endpoint+" failed", err)
		refuse(w, endpoint+"_failed", "internal error")
		return
	}
	if _, known := v1Status[pe.Code]; !known {
		v.s.serverError(r, endpoint+" failed", err, slog.String("code", pe.Code))
		refuse(w, endpoint+"_failed", "internal error")
		return
	}
	body := v1ErrorBody{Error: pe.Code, Message: pe.Message}
	switch {
	case pe.Conflict != nil:
		c := pe.Conflict
		serverRow := c.ServerRow
		if len(serverRow) == 0 {
			serverRow = json.RawMessage("null")
		}
		body.Conflict = &v1Conflict{Schema: c.Schema, Table: c.Table, Key: c.Key, Op: c.Op,
			BaseRowVersion: c.BaseRowVersion, ServerRowVersion: c.ServerRowVersion,
			ServerRowDeleted: c.ServerRowDeleted, ServerRow: serverRow}
		v.metrics.conflicts.Inc()
	case pe.Code == "source_retired":
		// source_id must be the request's source, and a successor, when named, a valid id:
		// a client rejects anything else, so a broken record is the server's failure (§2.5).
		body.SourceID = sourceOf(r.Context())
		body.Message = msgSourceRetired
		if pe.Retired != nil && pe.Retired.ReplacedBySourceID != "" {
			if !wire.ValidSourceID(pe.Retired.ReplacedBySourceID) {
				v.s.serverError(r, endpoint+" failed", errors.New("retired source's successor is not a valid source id"))
				refuse(w, codeSourceRetiredInvalid, "the source's retirement record is invalid")
				return
			}
			body.ReplacedBySourceID = pe.Retired.ReplacedBySourceID
		}
	case pe.Limit != nil:
		body.Dimension, body.Actual, body.Limit = pe.Limit.Dimension, pe.Limit.Actual, pe.Limit.Limit
	case pe.Code == "snapshot_chunk_too_small":
		body.RequiredByteCount = pe.RequiredByteCount
	}
	retryAfter := pe.RetryAfter
	if retryAfter <= 0 && v1Status[pe.Code] == http.StatusTooManyRequests {
		retryAfter = defaultServiceRetrySeconds
	}
	writeV1Error(w, body, retryAfter)
}
