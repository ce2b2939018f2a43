package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pulsesync/pulsesync/pgv1"
	"github.com/pulsesync/pulsesync/pgv1/wire"
	"github.com/pulsesync/pulsesync/sequencer"
)

// v1TimeLayout writes every v1 timestamp: RFC 3339 in UTC with fractional seconds, always
// six digits (the database's precision), so a client never meets a time without them.
const v1TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

func appendV1Time(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, v1TimeLayout)
	return append(b, '"')
}

// appendMember appends ,"name": (or "name": after '{') to b.
func appendMember(b []byte, name string) []byte {
	if n := len(b); n > 0 && b[n-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func appendIntMember(b []byte, name string, n int64) []byte {
	return strconv.AppendInt(appendMember(b, name), n, 10)
}

func appendStringMember(b []byte, name, s string) []byte {
	return appendString(appendMember(b, name), s)
}

// connect serves POST /sync/connect (docs/protocol-v1.md §3.2).
func (v *v1API) connect(w http.ResponseWriter, r *http.Request) {
	body, ok := readV1Body(w, r, v.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	if isBlank(body) {
		refuse(w, codeInvalidRequest, "request body required: {\"has_local_pending_rows\": bool}")
		return
	}
	pending, err := decodeConnect(body)
	if err != nil {
		refuse(w, codeInvalidRequest, err.Error())
		return
	}
	v.operate(w, r, "connect", func(ctx context.Context, c pgv1.Caller) error {
		res, err := v.store.Connect(ctx, c, pending)
		if err != nil {
			return err
		}
		v.s.writeEncoded(w, func(b []byte) []byte {
			b = appendStringMember(append(b, '{'), "resolution", res.Resolution)
			if res.Resolution == pgv1.InitializeLocal {
				b = appendStringMember(b, "initialization_id", res.InitializationID)
			}
			if res.Resolution == pgv1.InitializeLocal || res.Resolution == pgv1.RetryLater {
				b = appendV1Time(appendMember(b, "lease_expires_at"), res.LeaseExpiresAt)
			}
			if res.Resolution == pgv1.RetryLater {
				b = appendIntMember(b, "retry_after_seconds", int64(max(res.RetryAfterSeconds, 1)))
			}
			return append(b, '}')
		})
		return nil
	})
}

// createPush serves POST /sync/push-sessions (§3.3). The range and grammar checks of step 2
// are made here; the store makes the others in their order.
func (v *v1API) createPush(w http.ResponseWriter, r *http.Request) {
	body, ok := readV1Body(w, r, v.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	req, err := decodeCreatePush(body)
	if err != nil {
		refuse(w, codeInvalidRequest, err.Error())
		return
	}
	var invalid string
	switch {
	case req.SourceBundleID <= 0:
		invalid = "source_bundle_id must be at least 1"
	case req.PlannedRowCount <= 0:
		invalid = "planned_row_count must be at least 1"
	case !wire.ValidHash(req.RequestHash):
		invalid = "canonical_request_hash must be 64 lowercase hex characters"
	case req.InitializationID != "" && !wire.ValidUUID(req.InitializationID):
		invalid = "initialization_id must be a lowercase dashed UUID"
	}
	if invalid != "" {
		refuse(w, "push_session_invalid", invalid)
		return
	}
	v.operate(w, r, "push_session_create", func(ctx context.Context, c pgv1.Caller) error {
		res, err := v.store.CreatePushSession(ctx, c, req)
		if err != nil {
			return err
		}
		v.s.writeEncoded(w, func(b []byte) []byte {
			if m := res.AlreadyCommitted; m != nil {
				b = appendStringMember(append(b, '{'), "status", "already_committed")
				return append(appendBundleMeta(b, m), '}')
			}
			b = appendStringMember(append(b, '{'), "push_id", res.PushID)
			b = appendStringMember(b, "status", "staging")
			b = appendIntMember(b, "planned_row_count", res.PlannedRowCount)
			b = appendIntMember(b, "next_expected_row_ordinal", 0)
			b = appendStringMember(b, "canonical_request_hash", res.RequestHash)
			return append(b, '}')
		})
		return nil
	})
}

// appendBundleMeta appends the members of a committed bundle's metadata, in the order of
// §3.5's answer.
func appendBundleMeta(b []byte, m *pgv1.BundleMeta) []byte {
	b = appendIntMember(b, "bundle_seq", m.BundleSeq)
	b = appendStringMember(b, "source_id", m.SourceID)
	b = appendIntMember(b, "source_bundle_id", m.SourceBundleID)
	b = appendIntMember(b, "row_count", m.RowCount)
	b = appendStringMember(b, "bundle_hash", m.BundleHash)
	return appendStringMember(b, "canonical_request_hash", m.RequestHash)
}

// pushID returns the path's push_id, or answers 404 push_session_not_found when it is not a
// lowercase dashed UUID: no such session can exist (§3.4 check 1, §3.6).
func pushID(w http.ResponseWriter, r *http.Request) (string, bool) {
	return sessionID(w, r, "push_id", "push_session_not_found", "push session not found")
}

// stageChunk serves POST /sync/push-sessions/{push_id}/chunks (§3.4). Checks 1–3 and the
// base_row_version range are made here, the rest by the store.
func (v *v1API) stageChunk(w http.ResponseWriter, r *http.Request) {
	id, ok := pushID(w, r)
	if !ok {
		return
	}
	body, ok := readV1Body(w, r, v.cfg.MaxChunkBytes)
	if !ok {
		return
	}
	req, err := decodeChunk(body)
	if err != nil {
		refuse(w, codeInvalidRequest, err.Error())
		return
	}
	if msg := v.checkChunk(req); msg != "" {
		refuse(w, "push_chunk_invalid", msg)
		return
	}
	v.operate(w, r, "push_chunk", func(ctx context.Context, c pgv1.Caller) error {
		next, err := v.store.StageChunk(ctx, c, id, req.start, req.rows)
		if err != nil {
			return err
		}
		v.s.writeEncoded(w, func(b []byte) []byte {
			b = appendStringMember(append(b, '{'), "push_id", id)
			return append(appendIntMember(b, "next_expected_row_ordinal", next), '}')
		})
		return nil
	})
}

// checkChunk makes §3.4 check 3 and the per-row range of base_row_version; it returns the
// refusal's message, "" when the chunk passes.
func (v *v1API) checkChunk(req chunkRequest) string {
	switch {
	case req.start < 0:
		return "start_row_ordinal must be at least 0"
	case len(req.rows) == 0:
		return "rows must not be empty"
	case len(req.rows) > v.limits.MaxRowsPerPushChunk:
		return fmt.Sprintf("rows holds %d rows, more than the %d a chunk may carry", len(req.rows), v.limits.MaxRowsPerPushChunk)
	}
	for i := range req.rows {
		if req.rows[i].BaseRowVersion < 0 {
			return fmt.Sprintf("rows[%d].base_row_version must be at least 0", i)
		}
	}
	return ""
}

// commitPush serves POST /sync/push-sessions/{push_id}/commit (§3.5) and, once committed,
// announces the user's new bundle_seq to every node, which wakes the user's watches (§3.12).
func (v *v1API) commitPush(w http.ResponseWriter, r *http.Request) {
	id, ok := pushID(w, r)
	if !ok {
		return
	}
	body, ok := readV1Body(w, r, v.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	if err := decodeEmpty(body); err != nil {
		refuse(w, codeInvalidRequest, err.Error())
		return
	}
	v.operate(w, r, "push_session_commit", func(ctx context.Context, c pgv1.Caller) error {
		m, err := v.store.CommitPush(ctx, c, id)
		if err != nil {
			return err
		}
		v.s.cfg.Fanout.Announce(sequencer.Advance{User: sequencer.BundleStream(c.User), Seq: m.BundleSeq,
			From: m.BundleSeq, Source: c.Source, At: time.Now()})
		v.metrics.bundles.Inc()
		v.metrics.rows.Add(float64(m.RowCount))
		v.s.writeEncoded(w, func(b []byte) []byte {
			return append(appendBundleMeta(append(b, '{'), &m), '}')
		})
		return nil
	})
}

// deletePush serves DELETE /sync/push-sessions/{push_id} (§3.6): 204 without a body.
func (v *v1API) deletePush(w http.ResponseWriter, r *http.Request) {
	id, ok := pushID(w, r)
	if !ok {
		return
	}
	v.operate(w, r, "push_session_delete", func(ctx context.Context, c pgv1.Caller) error {
		if err := v.store.DeletePushSession(ctx, c, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
