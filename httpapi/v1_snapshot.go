package httpapi

import (
	"context"
	"net/http"

	"github.com/pulsesync/pulsesync/pgv1"
	"github.com/pulsesync/pulsesync/pgv1/wire"
)

const codeSnapshotSessionInvalid = "snapshot_session_invalid"

// createSnapshot serves POST /sync/snapshot-sessions (docs/protocol-v1.md §3.9). The body is
// optional: none (no content type needed), {}, or a source replacement. Every body refusal,
// wrong types and unknown members included, is 400 snapshot_session_invalid, as are the
// replacement's identity checks of step 5; the store judges the rest.
func (v *v1API) createSnapshot(w http.ResponseWriter, r *http.Request) {
	body, ok := readV1Body(w, r, v.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	repl, err := decodeSnapshotCreate(body)
	if err != nil {
		refuse(w, codeSnapshotSessionInvalid, err.Error())
		return
	}
	if repl != nil {
		if msg := v.checkReplacement(callerOf(r), repl); msg != "" {
			refuse(w, codeSnapshotSessionInvalid, msg)
			return
		}
	}
	v.operate(w, r, "snapshot_session_create", func(ctx context.Context, c pgv1.Caller) error {
		info, err := v.store.CreateSnapshot(ctx, c, repl)
		if err != nil {
			return err
		}
		v.s.writeEncoded(w, func(b []byte) []byte {
			b = appendStringMember(append(b, '{'), "snapshot_id", info.SnapshotID)
			b = appendIntMember(b, "snapshot_bundle_seq", info.SnapshotBundleSeq)
			b = appendIntMember(b, "row_count", info.RowCount)
			b = appendIntMember(b, "byte_count", info.ByteCount)
			b = appendV1Time(appendMember(b, "expires_at"), info.ExpiresAt)
			return append(b, '}')
		})
		return nil
	})
}

// v1ReplacementReasons are the reasons a source replacement may give (§3.9).
var v1ReplacementReasons = map[string]bool{
	"history_pruned": true, "source_sequence_out_of_order": true,
	"source_sequence_changed": true, "source_retired": true,
}

// checkReplacement makes the identity checks of §3.9 step 5 that need no state; it returns
// the refusal's message, "" when repl passes. Reserved ids get the same message as invalid
// ones, so the reserved set is not revealed.
func (v *v1API) checkReplacement(c pgv1.Caller, repl *pgv1.SourceReplacement) string {
	switch {
	case !wire.ValidSourceID(repl.PreviousSourceID) || v.store.ReservedSource(repl.PreviousSourceID):
		return "source_replacement.previous_source_id is not a valid source id"
	case !wire.ValidSourceID(repl.NewSourceID) || v.store.ReservedSource(repl.NewSourceID):
		return "source_replacement.new_source_id is not a valid source id"
	case repl.PreviousSourceID != c.Source:
		return "source_replacement.previous_source_id must be the Oversync-Source-ID of the request"
	case repl.NewSourceID == repl.PreviousSourceID:
		return "source_replacement.new_source_id must differ from previous_source_id"
	case !v1ReplacementReasons[repl.Reason]:
		return "source_replacement.reason must be history_pruned, source_sequence_out_of_order, source_sequence_changed or source_retired"
	}
	return ""
}

// snapshotID returns the path's snapshot_id, or answers 404 snapshot_session_not_found when it
// is not a lowercase dashed UUID (§6.2 #1: the reference answered 500).
func snapshotID(w http.ResponseWriter, r *http.Request) (string, bool) {
	return sessionID(w, r, "snapshot_id", "snapshot_session_not_found", "snapshot session not found")
}

// snapshotChunk serves GET /sync/snapshot-sessions/{snapshot_id} (§3.10). The answer has
// exactly the six members of §3.10 and the rows exactly as the store counted their bytes.
func (v *v1API) snapshotChunk(w http.ResponseWriter, r *http.Request) {
	const invalid = "snapshot_chunk_invalid"
	q := queryInts{q: r.URL.Query()}
	after := q.get("after_row_ordinal", 0)
	maxRows := q.get("max_rows", pgv1.DefaultRowsPerSnapshotChunk)
	maxBytes := q.get("max_bytes", pgv1.DefaultBytesPerSnapshotChunk)
	switch {
	case q.msg != "":
		refuse(w, invalid, q.msg)
		return
	case after < 0:
		refuse(w, invalid, "after_row_ordinal must be at least 0")
		return
	case maxRows <= 0:
		refuse(w, invalid, "max_rows must be at least 1")
		return
	case maxBytes <= 0:
		refuse(w, invalid, "max_bytes must be at least 1")
		return
	}
	id, ok := snapshotID(w, r)
	if !ok {
		return
	}
	v.operate(w, r, "snapshot_chunk", func(ctx context.Context, c pgv1.Caller) error {
		chunk, err := v.store.SnapshotChunk(ctx, c, id, after,
			int(min(maxRows, pgv1.MaxRowsPerSnapshotChunk)), min(maxBytes, pgv1.MaxBytesPerSnapshotChunk))
		if err != nil {
			return err
		}
		v.s.writeEncoded(w, func(b []byte) []byte {
			b = appendStringMember(append(b, '{'), "snapshot_id", chunk.SnapshotID)
			b = appendIntMember(b, "snapshot_bundle_seq", chunk.SnapshotBundleSeq)
			b = appendMember(b, "rows")
			b = appendRawList(b, chunk.Rows)
			b = appendIntMember(b, "next_row_ordinal", chunk.NextRowOrdinal)
			b = appendBool(appendMember(b, "has_more"), chunk.HasMore)
			b = appendIntMember(b, "byte_count", chunk.ByteCount)
			return append(b, '}')
		})
		return nil
	})
}

// deleteSnapshot serves DELETE /sync/snapshot-sessions/{snapshot_id} (§3.11): 204.
func (v *v1API) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	id, ok := snapshotID(w, r)
	if !ok {
		return
	}
	v.operate(w, r, "snapshot_session_delete", func(ctx context.Context, c pgv1.Caller) error {
		if err := v.store.DeleteSnapshot(ctx, c, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
