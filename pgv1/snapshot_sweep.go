package pgv1

import (
	"context"
	"fmt"
)

// sweepBatch bounds the sessions (snapshot or push) one sweep statement removes, so that a
// sweep after a long pause holds its locks briefly.
const sweepBatch = 100

// sweepSnapshotsSQL removes at most $1 sessions past their expiry (a retired session expires
// when it is retired) together with their rows, and counts them. Sessions a chunk read is
// sliding right now are skipped, not waited for: the read just made them live again.
const sweepSnapshotsSQL = `
WITH gone AS (
    DELETE FROM sync_v1.snapshots
    WHERE snapshot_id IN (SELECT snapshot_id FROM sync_v1.snapshots
                          WHERE expires_at <= clock_timestamp()
                          LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING snapshot_id
), gone_rows AS (
    DELETE FROM sync_v1.snapshot_rows WHERE snapshot_id IN (SELECT snapshot_id FROM gone)
)
SELECT count(*) FROM gone`

// sweepSnapshots removes every expired or retired snapshot session and its rows, by the
// database clock, and returns how many sessions it removed. A chunk read of a removed session
// answers 404 from then on (docs/protocol-v1.md §3.11).
func (s *Store) sweepSnapshots(ctx context.Context) (int64, error) {
	return s.sweepInBatches(ctx, sweepSnapshotsSQL, "sweep snapshots")
}

// sweepInBatches runs a sweep statement, which removes at most $1 expired sessions with their
// rows and counts them, until a batch comes back short, and returns the total removed.
func (s *Store) sweepInBatches(ctx context.Context, sql, what string) (int64, error) {
	var total int64
	for {
		var n int64
		if err := s.pool.QueryRow(ctx, sql, sweepBatch).Scan(&n); err != nil {
			return total, fmt.Errorf("%s: %w", what, err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}

// Sweep removes the store's expired state: snapshot sessions past their expiry or retired, and
// push sessions past their expiry, with their rows. Run it periodically (every minute or so);
// it is safe on several nodes at once.
func (s *Store) Sweep(ctx context.Context) error {
	if _, err := s.sweepPushSessions(ctx); err != nil {
		return err
	}
	_, err := s.sweepSnapshots(ctx)
	return err
}
