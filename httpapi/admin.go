package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/pulsesync/pulsesync/pg"
)

// failureJSON is one element of GET /admin/materialize-failures (docs/protocol-v0.md §6).
type failureJSON struct {
	ID               int64           `json:"id"`
	UserID           string          `json:"user_id"`
	Schema           string          `json:"schema"`
	Table            string          `json:"table"`
	PK               string          `json:"pk"`
	AttemptedVersion int64           `json:"attempted_version"`
	Op               string          `json:"op"`
	Payload          json.RawMessage `json:"payload,omitempty"` // absent for DELETE
	Error            string          `json:"error"`
	FirstSeen        time.Time       `json:"first_seen"`
	RetryCount       int             `json:"retry_count"`
}

// listFailures serves GET /admin/materialize-failures?schema=&table=&limit=: the caller's
// failure records, newest first, or the literal null when there are none, as the reference
// answers. A limit that is not an integer in 1…1000 means 100; the store applies that rule.
func (s *Server) listFailures(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	limit, _ := strconv.Atoi(v.Get("limit")) // unparsable: 0, which means the default
	filter := pg.FailureFilter{Schema: v.Get("schema"), Table: v.Get("table"), Limit: limit}
	failures, err := s.store.ListFailures(r.Context(), identityOf(r.Context()).User, filter)
	if err != nil {
		s.serverError(r, "list materialize failures", err)
		writeError(w, http.StatusInternalServerError, codeListFailuresFailed, "Failed to list failures")
		return
	}
	var out []failureJSON // nil encodes as null
	for _, f := range failures {
		out = append(out, failureJSON{
			ID: f.ID, UserID: f.User, Schema: f.Schema, Table: f.Table, PK: f.PK.String(),
			AttemptedVersion: f.AttemptedVersion, Op: f.Op, Payload: f.Payload, Error: f.Error,
			FirstSeen: f.FirstSeen, RetryCount: f.RetryCount,
		})
	}
	writeJSON(w, out)
}

// retryJSON is the answer of a retry: the shape of an upload status, as in the reference.
type retryJSON struct {
	SourceChangeID int64  `json:"source_change_id"`
	Status         string `json:"status"`
	NewVersion     int64  `json:"new_server_version"`
	Message        string `json:"message,omitempty"`
}

// retryFailure serves POST /admin/materialize-failures/retry?id=<n>, or with the body {"id":n}
// when the query has no usable id (docs/protocol-v0.md §6). Answers: 200 with the retry's outcome; 400
// for a missing or non-positive id; 404 for an unknown id or another user's; 409 while another
// retry of it runs; 500 retry_failed when the database fails.
func (s *Server) retryFailure(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
	if id == 0 {
		var body struct {
			ID int64 `json:"id"`
		}
		if json.NewDecoder(r.Body).Decode(&body) == nil {
			id = body.ID
		}
	}
	if id <= 0 {
		writeError(w, http.StatusBadRequest, codeInvalidRequest, "missing or invalid id")
		return
	}
	res, err := s.store.RetryFailure(r.Context(), identityOf(r.Context()).User, id)
	switch {
	case errors.Is(err, pg.ErrFailureNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, "materialize failure not found")
	case errors.Is(err, pg.ErrRetryInProgress):
		writeError(w, http.StatusConflict, codeRetryInProgress, "materialize failure retry is already in progress")
	case err != nil:
		// The reference sent the error's text; database errors are not for clients, so the
		// cause goes to the log and the message stays fixed.
		s.serverError(r, "retry materialize failure", err, slog.Int64("id", id))
		writeError(w, http.StatusInternalServerError, codeRetryFailed, "Failed to retry materialize failure")
	default:
		writeJSON(w, retryJSON{Status: string(res.Status), NewVersion: res.Version, Message: res.Message})
	}
}
