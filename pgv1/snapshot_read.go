package pgv1

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// slideSnapshotSQL finds the caller's live session and pushes its expiry to the database clock
// plus Config.SnapshotTTL ($3 microseconds), never past its hard cap (docs/protocol-v1.md §6.2
// #6), so a slow client reading a large snapshot keeps it as long as it makes progress.
const slideSnapshotSQL = `
UPDATE sync_v1.snapshots
SET expires_at = least(clock_timestamp() + $3 * interval '1 microsecond', hard_expires_at)
WHERE snapshot_id = $1 AND user_id = $2 AND NOT retired AND expires_at > clock_timestamp()
RETURNING snapshot_bundle_seq, row_count`

// snapshotPageSQL reads the rows of a chunk: those after ordinal $2, at most $3 of them, while
// the running byte sum stays within $4. The first eligible row is returned even when it alone
// is over the budget, without its text, so the refusal can name its size.
const snapshotPageSQL = `
SELECT row_ordinal, byte_count, CASE WHEN running <= $4 THEN wire END
FROM (SELECT row_ordinal, byte_count, wire, sum(byte_count) OVER (ORDER BY row_ordinal) AS running
      FROM sync_v1.snapshot_rows
      WHERE snapshot_id = $1 AND row_ordinal > $2::bigint AND row_ordinal <= $2::bigint + $3
      ORDER BY row_ordinal) AS page
WHERE running <= $4 OR row_ordinal = $2::bigint + 1
ORDER BY row_ordinal`

// SnapshotChunk resolves GET /sync/snapshot-sessions/{snapshot_id} (docs/protocol-v1.md
// §3.10). maxRows and maxBytes are capped at MaxRowsPerSnapshotChunk and
// MaxBytesPerSnapshotChunk. Checks, in the reference's order: a range error → 400
// snapshot_chunk_invalid; more chunk reads in progress in this process than
// Config.MaxConcurrentSnapshotChunks → 429 snapshot_chunk_capacity; an unknown session or an id
// that is not a UUID → 404 snapshot_session_not_found (§6.2 #1); another user's → 403
// snapshot_session_forbidden; expired or retired → 410 snapshot_session_expired; the first row
// after after alone larger than maxBytes → 400 snapshot_chunk_too_small with its size.
//
// Rows follow after in ordinal order while fewer than maxRows are taken and the byte sum stays
// within maxBytes; HasMore says a row exists beyond the page. Rows are stored immutable, so the
// page is consistent whatever runs beside it. Each read slides the session's expiry.
func (s *Store) SnapshotChunk(ctx context.Context, c Caller, snapshotID string, after int64, maxRows int, maxBytes int64) (SnapshotChunk, error) {
	if after < 0 || maxRows <= 0 || maxBytes <= 0 {
		return SnapshotChunk{}, &Error{Code: "snapshot_chunk_invalid",
			Message: "after_row_ordinal must be non-negative, max_rows and max_bytes positive"}
	}
	maxRows = min(maxRows, MaxRowsPerSnapshotChunk)
	maxBytes = min(maxBytes, MaxBytesPerSnapshotChunk)
	release, retryAfter := s.snapshots.chunks.enter(s.cfg.MaxConcurrentSnapshotChunks)
	if release == nil {
		return SnapshotChunk{}, &Error{Code: "snapshot_chunk_capacity",
			Message: "too many snapshot chunk reads in progress; retry later", RetryAfter: retryAfter}
	}
	defer release()
	if !wire.ValidUUID(snapshotID) {
		return SnapshotChunk{}, errSnapshotNotFound()
	}

	// One round trip: the session's slide and the page. The page is thrown away when the
	// session turns out not to be the caller's live one.
	chunk := SnapshotChunk{SnapshotID: snapshotID, NextRowOrdinal: after}
	var rowCount int64
	batch := &pgx.Batch{}
	batch.Queue(slideSnapshotSQL, snapshotID, c.User, s.cfg.SnapshotTTL.Microseconds()).QueryRow(func(row pgx.Row) error {
		return row.Scan(&chunk.SnapshotBundleSeq, &rowCount)
	})
	var tooBig int64
	batch.Queue(snapshotPageSQL, snapshotID, after, maxRows, maxBytes).Query(func(rows pgx.Rows) error {
		var ordinal, size int64
		var text []byte
		_, err := pgx.ForEachRow(rows, []any{&ordinal, &size, &text}, func() error {
			if text == nil {
				tooBig = size
				return nil
			}
			chunk.Rows = append(chunk.Rows, json.RawMessage(text))
			chunk.NextRowOrdinal = ordinal
			chunk.ByteCount += size
			return nil
		})
		return err
	})
	err := s.pool.SendBatch(ctx, batch).Close()
	if errors.Is(err, pgx.ErrNoRows) {
		return SnapshotChunk{}, s.snapshotRefusal(ctx, c, snapshotID)
	}
	if err != nil {
		return SnapshotChunk{}, fmt.Errorf("read snapshot chunk: %w", err)
	}
	if tooBig > 0 {
		return SnapshotChunk{}, &Error{Code: "snapshot_chunk_too_small", RequiredByteCount: tooBig,
			Message: fmt.Sprintf("the next snapshot row needs %d bytes, more than max_bytes %d", tooBig, maxBytes)}
	}
	chunk.HasMore = chunk.NextRowOrdinal < rowCount
	return chunk, nil
}

// snapshotOwnerSQL reads who owns a session, to tell the refusals of a read apart.
const snapshotOwnerSQL = `SELECT user_id FROM sync_v1.snapshots WHERE snapshot_id = $1`

// snapshotRefusal says why snapshotID is not a live session of the caller: 404 when there is no
// such session, 403 when it is another user's, else 410, since the caller's session was found
// expired or retired.
func (s *Store) snapshotRefusal(ctx context.Context, c Caller, snapshotID string) error {
	var owner string
	err := s.pool.QueryRow(ctx, snapshotOwnerSQL, snapshotID).Scan(&owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return errSnapshotNotFound()
	case err != nil:
		return fmt.Errorf("look up snapshot: %w", err)
	case owner != c.User:
		return errSnapshotForbidden()
	}
	return &Error{Code: "snapshot_session_expired", Message: "snapshot session expired or was deleted; create a new one"}
}

func errSnapshotNotFound() *Error {
	return &Error{Code: "snapshot_session_not_found", Message: "snapshot session not found"}
}

func errSnapshotForbidden() *Error {
	return &Error{Code: "snapshot_session_forbidden", Message: "snapshot session belongs to another user"}
}

// retireSnapshotSQL retires the caller's session: it expires now, and the sweeper removes it and
// its rows later. A session already retired or expired is retired again, harmlessly.
const retireSnapshotSQL = `UPDATE sync_v1.snapshots
SET retired = true, expires_at = least(expires_at, clock_timestamp())
WHERE snapshot_id = $1 AND user_id = $2`

// DeleteSnapshot resolves DELETE /sync/snapshot-sessions/{snapshot_id} (docs/protocol-v1.md
// §3.11): the session is retired logically, so chunk reads answer 410 until the sweeper removes
// it, and a second DELETE before that succeeds again. An unknown id (or one that is not a UUID)
// → 404 snapshot_session_not_found; another user's → 403 snapshot_session_forbidden.
func (s *Store) DeleteSnapshot(ctx context.Context, c Caller, snapshotID string) error {
	if !wire.ValidUUID(snapshotID) {
		return errSnapshotNotFound()
	}
	tag, err := s.pool.Exec(ctx, retireSnapshotSQL, snapshotID, c.User)
	if err != nil {
		return fmt.Errorf("retire snapshot: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// Not the caller's: unknown, or another user's. The caller's own would have been retired.
	return s.snapshotRefusal(ctx, c, snapshotID)
}
