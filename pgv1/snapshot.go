package pgv1

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/sequencer"
)

// CreateSnapshot resolves POST /sync/snapshot-sessions (docs/protocol-v1.md §3.9); repl is nil
// without a source replacement. Checks and steps, in the reference's order:
//  1. admission: more builds in progress in this process than
//     Config.MaxConcurrentSnapshotBuilds → 429 snapshot_build_capacity, with a Retry-After that
//     grows with the crowd of refused callers (see admission);
//  2. the scope not initialized → 409 scope_uninitialized / scope_initializing;
//  3. the user's lock, which fences commits, so the snapshot is exactly the state at H, the
//     user's highest committed bundle_seq;
//  4. the source replacement, if any (see replaceSource), atomic with the snapshot;
//  5. the user's live sessions beyond Config.MaxSnapshotsPerUser - 1 are retired, oldest first;
//  6. every live row is materialised in SQL from sync_v1.row_state, ordered by the registry's
//     table order, then by key bytes, numbered from 1, each with the exact wire text a chunk
//     emits and its length in bytes; over a limit → 409 snapshot_session_limit_exceeded
//     (row_byte_count, then row_count, then byte_count), and nothing is kept.
//
// ExpiresAt is the database clock at creation plus Config.SnapshotTTL.
func (s *Store) CreateSnapshot(ctx context.Context, c Caller, repl *SourceReplacement) (SnapshotInfo, error) {
	release, retryAfter := s.snapshots.builds.enter(s.cfg.MaxConcurrentSnapshotBuilds)
	if release == nil {
		return SnapshotInfo{}, &Error{Code: "snapshot_build_capacity",
			Message: "too many snapshot builds in progress; retry later", RetryAfter: retryAfter}
	}
	defer release()
	if err := s.checkScopeReadable(ctx, c.User); err != nil {
		return SnapshotInfo{}, err
	}
	var info SnapshotInfo
	err := s.inUserLock(ctx, c.User, func(ctx context.Context, tx pgx.Tx, seq *sequencer.Block) error {
		if repl != nil {
			if err := s.replaceSource(ctx, tx, c, *repl); err != nil {
				return err
			}
		}
		var err error
		info, err = s.materialise(ctx, tx, c.User, seq.Last())
		return err
	})
	if err != nil {
		return SnapshotInfo{}, err
	}
	return info, nil
}

// buildMemorySQL lets the build sort a user's rows in memory rather than in temporary files,
// for the rest of its transaction: a sort of 100,000 rows of a few hundred bytes needs tens of
// MB, and builds are few at a time (Config.MaxConcurrentSnapshotBuilds).
const buildMemorySQL = `SELECT set_config('work_mem', '64MB', true)`

// retireOldSnapshotsSQL retires the user's live sessions but the newest $2, making room for one
// more under Config.MaxSnapshotsPerUser (docs/protocol-v1.md §6.1 H8).
const retireOldSnapshotsSQL = `
UPDATE sync_v1.snapshots SET retired = true, expires_at = least(expires_at, now())
WHERE snapshot_id IN (
    SELECT snapshot_id FROM sync_v1.snapshots
    WHERE user_id = $1 AND NOT retired AND expires_at > now()
    ORDER BY created_at DESC, snapshot_id
    OFFSET $2)`

// materialiseSQL freezes every live row of user $1 into a new session in one statement and
// returns the session's id, totals, largest row and expiry. Tables come in as the arrays
// $2 (schemas) and $3 (names) in registry order; rows of tables no longer registered are left
// out. Each row's wire text is {"schema","table","key","row_version","payload"} in that order,
// built from row_state's canonical key and payload texts, and byte_count is its length in UTF-8
// bytes: exactly what a chunk emits for it (docs/protocol-v1.md §3.10). The clock is read once,
// at the end of the build, for created_at and both expiries ($5 and $6 microseconds later).
const materialiseSQL = `
WITH id AS (
    SELECT gen_random_uuid() AS snapshot_id
), tables AS (
    SELECT * FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t (schema_name, table_name, position)
), live AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY t.position, rs.key_value COLLATE "C") AS row_ordinal,
           '{"schema":' || to_json(rs.schema_name)::text || ',"table":' || to_json(rs.table_name)::text ||
           ',"key":' || rs.key_json || ',"row_version":' || rs.row_version ||
           ',"payload":' || rs.payload || '}' AS wire
    FROM tables t
    JOIN sync_v1.row_state rs
      ON rs.user_id = $1 AND rs.schema_name = t.schema_name AND rs.table_name = t.table_name AND NOT rs.deleted
), frozen AS (
    INSERT INTO sync_v1.snapshot_rows (snapshot_id, row_ordinal, wire, byte_count)
    SELECT id.snapshot_id, live.row_ordinal, live.wire, octet_length(live.wire)
    FROM id, live
    RETURNING byte_count
), totals AS (
    SELECT count(*) AS row_count, coalesce(sum(byte_count), 0)::bigint AS byte_count,
           coalesce(max(byte_count), 0)::bigint AS largest_row, clock_timestamp() AS now
    FROM frozen
)
INSERT INTO sync_v1.snapshots (snapshot_id, user_id, snapshot_bundle_seq, row_count, byte_count,
                               created_at, expires_at, hard_expires_at)
SELECT id.snapshot_id, $1, $4, totals.row_count, totals.byte_count,
       totals.now, totals.now + $5 * interval '1 microsecond', totals.now + $6 * interval '1 microsecond'
FROM id, totals
RETURNING snapshot_id::text, row_count, byte_count, (SELECT largest_row FROM totals), expires_at`

// materialise retires the sessions that make room for a new one and builds it at bundleSeq,
// inside the user's lock.
func (s *Store) materialise(ctx context.Context, tx pgx.Tx, user string, bundleSeq int64) (SnapshotInfo, error) {
	schemas, tables := s.reg.order()
	info := SnapshotInfo{SnapshotBundleSeq: bundleSeq}
	var largest int64
	batch := &pgx.Batch{}
	batch.Queue(buildMemorySQL)
	batch.Queue(retireOldSnapshotsSQL, user, s.cfg.MaxSnapshotsPerUser-1)
	batch.Queue(materialiseSQL, user, schemas, tables, bundleSeq,
		s.cfg.SnapshotTTL.Microseconds(), s.cfg.SnapshotMaxLifetime.Microseconds()).QueryRow(func(row pgx.Row) error {
		return row.Scan(&info.SnapshotID, &info.RowCount, &info.ByteCount, &largest, &info.ExpiresAt)
	})
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return SnapshotInfo{}, fmt.Errorf("materialise snapshot: %w", err)
	}
	if err := s.snapshotLimits(info, largest); err != nil {
		return SnapshotInfo{}, err
	}
	info.ExpiresAt = info.ExpiresAt.UTC()
	return info, nil
}

// snapshotLimits checks a built session against the configured bounds, in the order row size,
// row count, byte count; a zero bound on the session's rows or bytes means unlimited.
func (s *Store) snapshotLimits(info SnapshotInfo, largestRow int64) error {
	exceeded := func(dimension string, actual, limit int64) error {
		return &Error{Code: "snapshot_session_limit_exceeded",
			Message: fmt.Sprintf("snapshot %s %d exceeds the limit %d", dimension, actual, limit),
			Limit:   &LimitExceeded{Dimension: dimension, Actual: actual, Limit: limit}}
	}
	switch {
	case largestRow > s.cfg.MaxBytesPerSnapshotRow:
		return exceeded("row_byte_count", largestRow, s.cfg.MaxBytesPerSnapshotRow)
	case s.cfg.MaxRowsPerSnapshot > 0 && info.RowCount > s.cfg.MaxRowsPerSnapshot:
		return exceeded("row_count", info.RowCount, s.cfg.MaxRowsPerSnapshot)
	case s.cfg.MaxBytesPerSnapshot > 0 && info.ByteCount > s.cfg.MaxBytesPerSnapshot:
		return exceeded("byte_count", info.ByteCount, s.cfg.MaxBytesPerSnapshot)
	}
	return nil
}
