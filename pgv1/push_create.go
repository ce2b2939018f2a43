package pgv1

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/pgv1/wire"
	"github.com/pulsesync/pulsesync/sequencer"
)

// source is a writer's row as a mutating call sees it under the user's lock; a source never
// seen reads as active with watermark 0.
type source struct {
	state      string // active | reserved | retired
	watermark  int64  // max_committed_source_bundle_id
	replacedBy string
	exists     bool
}

// readSourceSQL reads one source of the user.
const readSourceSQL = `SELECT state, max_committed_source_bundle_id, coalesce(replaced_by_source_id, '')
FROM sync_v1.sources WHERE user_id = $1 AND source_id = $2`

// queueReadSource queues readSourceSQL into batch, filling src.
func queueReadSource(batch *pgx.Batch, user, sourceID string, src *source) {
	*src = source{state: "active"}
	batch.Queue(readSourceSQL, user, sourceID).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			src.exists = true
			if err := rows.Scan(&src.state, &src.watermark, &src.replacedBy); err != nil {
				return fmt.Errorf("read source: %w", err)
			}
		}
		return rows.Err()
	})
}

// retiredError is the structured 409 source_retired of docs/protocol-v1.md §2.5.
func retiredError(sourceID string, src source) *Error {
	return &Error{Code: "source_retired", Message: "source is retired",
		Retired: &Retired{SourceID: sourceID, ReplacedBySourceID: src.replacedBy}}
}

// deleteExpiredPushSessionsSQL removes the user's push sessions past their expiry, by the
// database clock, with their staged rows.
const deleteExpiredPushSessionsSQL = `
WITH expired AS (
    DELETE FROM sync_v1.push_sessions WHERE user_id = $1 AND expires_at <= now() RETURNING push_id
)
DELETE FROM sync_v1.push_rows WHERE push_id IN (SELECT push_id FROM expired)`

// committedTupleSQL finds the bundle a (source, source_bundle_id) tuple committed, if it is
// still above the user's retained floor.
const committedTupleSQL = `
SELECT b.bundle_seq, b.row_count, b.bundle_hash, b.request_hash
FROM sync_v1.bundles b
WHERE b.user_id = $1 AND b.source_id = $2 AND b.source_bundle_id = $3
  AND b.bundle_seq > coalesce((SELECT retained_floor FROM sync_v1.scopes WHERE user_id = $1), 0)`

// createPushSessionSQL replaces any uncommitted session of the tuple ("hard replace"), staged
// rows included, by a new one that expires after the session TTL, by the database clock.
const createPushSessionSQL = `
WITH replaced AS (
    DELETE FROM sync_v1.push_sessions WHERE user_id = $2 AND source_id = $3 AND source_bundle_id = $4
    RETURNING push_id
), staged AS (
    DELETE FROM sync_v1.push_rows WHERE push_id IN (SELECT push_id FROM replaced)
)
INSERT INTO sync_v1.push_sessions
    (push_id, user_id, source_id, source_bundle_id, planned_row_count, request_hash, initialization_id, expires_at)
SELECT $1, $2, $3, $4, $5, $6, $7::uuid, now() + $8 * interval '1 microsecond'
FROM (SELECT count(*) FROM replaced) AS r`

// CreatePushSession resolves POST /sync/push-sessions with the checks of docs/protocol-v1.md
// §3.3 in order, under the user's lock: the user's expired sessions go, an expired lease is
// cleared, the scope state must fit the request's initialization_id, a tuple committed before
// answers already_committed (or 400 when the request hash differs), the source must be
// neither retired nor out of sequence, and any uncommitted session of the same tuple is
// replaced by the new one. A seed push refreshes its lease.
func (s *Store) CreatePushSession(ctx context.Context, c Caller, req CreatePush) (CreatePushResult, error) {
	if req.SourceBundleID <= 0 || req.PlannedRowCount <= 0 || !wire.ValidHash(req.RequestHash) ||
		(req.InitializationID != "" && !wire.ValidUUID(req.InitializationID)) {
		return CreatePushResult{}, &Error{Code: "push_session_invalid", Message: "source_bundle_id and planned_row_count must be positive, canonical_request_hash 64 lowercase hex, initialization_id a lowercase UUID"}
	}
	var res CreatePushResult
	err := s.inUserLock(ctx, c.User, func(ctx context.Context, tx pgx.Tx, _ *sequencer.Block) error {
		res = CreatePushResult{}
		var sc scope
		var src source
		var committed *BundleMeta
		batch := &pgx.Batch{}
		batch.Queue(deleteExpiredPushSessionsSQL, c.User)
		queueLockScope(batch, c.User, &sc)
		batch.Queue(committedTupleSQL, c.User, c.Source, req.SourceBundleID).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				committed = &BundleMeta{SourceID: c.Source, SourceBundleID: req.SourceBundleID}
				if err := rows.Scan(&committed.BundleSeq, &committed.RowCount, &committed.BundleHash, &committed.RequestHash); err != nil {
					return err
				}
			}
			return rows.Err()
		})
		queueReadSource(batch, c.User, c.Source, &src)
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("read push state: %w", err)
		}

		if err := checkPushScope(sc, c.Source, req.InitializationID); err != nil {
			return err
		}
		if committed != nil {
			if committed.RequestHash != req.RequestHash {
				return &Error{Code: "push_session_invalid", Message: "canonical_request_hash does not match the committed source tuple"}
			}
			res.AlreadyCommitted = committed
			return nil
		}
		switch expected := src.watermark + 1; {
		case src.state == "retired":
			return retiredError(c.Source, src)
		case req.SourceBundleID < expected:
			return &Error{Code: "history_pruned", Message: fmt.Sprintf("source_bundle_id %d was committed but its history is no longer retained", req.SourceBundleID)}
		case req.SourceBundleID > expected:
			return &Error{Code: "source_sequence_out_of_order", Message: fmt.Sprintf("source_bundle_id %d is out of order: expected %d", req.SourceBundleID, expected)}
		}

		res.PushID, res.PlannedRowCount, res.RequestHash = wire.NewUUID(), req.PlannedRowCount, req.RequestHash
		// The writes and the COMMIT in one round trip.
		batch = &pgx.Batch{}
		var initID any
		if req.InitializationID != "" {
			initID = req.InitializationID
			s.queueSetScope(batch, c.User, "initializing", req.InitializationID, c.Source)
		}
		batch.Queue(createPushSessionSQL, res.PushID, c.User, c.Source, req.SourceBundleID,
			req.PlannedRowCount, req.RequestHash, initID, s.cfg.PushSessionTTL.Microseconds())
		queueCommit(batch)
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("insert push session: %w", err)
		}
		return nil
	})
	if err != nil {
		return CreatePushResult{}, wrap("create push session", err)
	}
	return res, nil
}

// checkPushScope applies step 4 of docs/protocol-v1.md §3.3 to a push of source carrying
// initID ("" = none).
func checkPushScope(sc scope, sourceID, initID string) error {
	switch sc.state {
	case "uninitialized":
		if initID != "" {
			return errLeaseExpired()
		}
		return &Error{Code: "scope_uninitialized", Message: "the scope is not initialized; connect first"}
	case "initializing":
		if initID == "" {
			return &Error{Code: "scope_initializing", Message: "the scope is being initialized by another source"}
		}
		return checkLease(sc, sourceID, initID)
	default:
		if initID != "" {
			return &Error{Code: "push_session_invalid", Message: "initialization_id is not allowed once the scope is initialized"}
		}
		return nil
	}
}

// checkLease requires the live lease of sc to be held by source under initID: a lapsed lease
// (already cleared, so the scope reads uninitialized) is 410 initialization_expired, somebody
// else's is 409 initialization_stale.
func checkLease(sc scope, sourceID, initID string) error {
	switch {
	case sc.state == "uninitialized":
		return errLeaseExpired()
	case sc.state != "initializing" || sc.initID != initID || sc.leaseSource != sourceID:
		return &Error{Code: "initialization_stale", Message: "the initialization lease is held by another source or was superseded"}
	}
	return nil
}

// errLeaseExpired is the 410 of a seed push whose lease has lapsed.
func errLeaseExpired() *Error {
	return &Error{Code: "initialization_expired", Message: "the initialization lease has expired; connect again"}
}
