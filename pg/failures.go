package pg

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

const listFailuresSQL = `SELECT id, user_id, schema_name, table_name, pk, attempted_version, op, payload, error,
       first_seen, retry_count
FROM sync.materialize_failures
WHERE user_id = $1 AND ($2 = '' OR schema_name = $2) AND ($3 = '' OR table_name = $3)
ORDER BY first_seen DESC, id DESC
LIMIT $4`

// ListFailures returns user's recorded projection failures, newest first (docs/protocol-v0.md §6).
func (s *Store) ListFailures(ctx context.Context, user string, f FailureFilter) ([]Failure, error) {
	if f.Limit < 1 || f.Limit > 1000 {
		f.Limit = 100
	}
	rows, err := s.pool.Query(ctx, listFailuresSQL, user, f.Schema, f.Table, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list failures: %w", err)
	}
	failures, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Failure])
	if err != nil {
		return nil, fmt.Errorf("list failures: %w", err)
	}
	return failures, nil
}

const failureKeySQL = `SELECT schema_name, table_name, pk, attempted_version FROM sync.materialize_failures
WHERE id = $1 AND user_id = $2`

const currentRowSQL = `SELECT r.server_version, r.deleted, r.server_id, c.payload
FROM sync.rows r JOIN sync.changes c ON c.user_id = r.user_id AND c.server_id = r.server_id
WHERE r.user_id = $1 AND r.schema_name = $2 AND r.table_name = $3 AND r.pk = $4
FOR SHARE OF r`

const lockFailureSQL = `SELECT 1 FROM sync.materialize_failures WHERE id = $1 AND user_id = $2 FOR UPDATE NOWAIT`

const deleteFailureSQL = `DELETE FROM sync.materialize_failures WHERE id = $1`

const bumpFailureSQL = `UPDATE sync.materialize_failures SET retry_count = retry_count + 1, error = $2 WHERE id = $1`

// RetryFailure re-runs user's failed projection id from the row's current sync state
// (docs/protocol-v0.md §6). It returns ErrFailureNotFound for an unknown id or another user's, checked
// before anything is locked (§10.3 #13), and ErrRetryInProgress while another retry of the same
// failure runs.
//
// Locks are taken in the order uploads take them (the row's sync record, then the failure
// record), so a retry and an upload of the same row queue behind each other instead of
// deadlocking, and the projection written last is always of the newest version.
func (s *Store) RetryFailure(ctx context.Context, user string, id int64) (RetryResult, error) {
	var result RetryResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var name TableName
		var pk UUID
		var attempted int64
		err := tx.QueryRow(ctx, failureKeySQL, id, user).Scan(&name.Schema, &name.Table, &pk, &attempted)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrFailureNotFound
		}
		if err != nil {
			return fmt.Errorf("read failure: %w", err)
		}
		var version, serverID int64
		var deleted bool
		var payload []byte
		err = tx.QueryRow(ctx, currentRowSQL, user, name.Schema, name.Table, pk).Scan(&version, &deleted, &serverID, &payload)
		stale := errors.Is(err, pgx.ErrNoRows)
		if err != nil && !stale {
			return fmt.Errorf("read current row: %w", err)
		}
		if err := tx.QueryRow(ctx, lockFailureSQL, id, user).Scan(new(int)); err != nil {
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				return ErrFailureNotFound // removed meanwhile by an upload's successful projection
			case pgCode(err) == "55P03": // lock_not_available: another retry holds it
				return ErrRetryInProgress
			}
			return fmt.Errorf("lock failure: %w", err)
		}
		t, registered := s.reg.Lookup(name.Schema, name.Table)
		if stale || !registered {
			result = RetryResult{Status: StatusApplied, Version: attempted, Message: "failure was stale; removed"}
			_, err := tx.Exec(ctx, deleteFailureSQL, id)
			return err
		}
		op := opUpdate
		if deleted {
			op, payload = opDelete, nil
		}
		if s.reg.deferrable {
			// As in uploads: a deferred constraint the projection breaks must fail inside the
			// projection's savepoint, not at commit (docs/protocol-v0.md §10.3 #5).
			if _, err := tx.Exec(ctx, `SET CONSTRAINTS ALL IMMEDIATE`); err != nil {
				return fmt.Errorf("set constraints immediate: %w", err)
			}
		}
		current := &appliedChange{change: &change{table: t, op: op, pk: pk, payload: payload}, version: version, serverID: serverID}
		reason, err := s.reproject(ctx, tx, user, current)
		if err != nil {
			return err
		}
		if reason != "" {
			result = RetryResult{Status: StatusMaterializeError, Version: version, Message: reason}
			_, err = tx.Exec(ctx, bumpFailureSQL, id, reason)
			return err
		}
		result = RetryResult{Status: StatusApplied, Version: version}
		_, err = tx.Exec(ctx, deleteFailureSQL, id)
		return err
	})
	if err != nil {
		return RetryResult{}, err
	}
	return result, nil
}

// reproject runs one change's projection inside tx and returns why it failed, or "".
func (s *Store) reproject(ctx context.Context, tx pgx.Tx, user string, a *appliedChange) (reason string, err error) {
	groups, unconverted := planProjections([]*appliedChange{a})
	if len(unconverted) > 0 {
		return unconverted[0].reason, nil
	}
	refused := map[rowKey]bool{}
	reason, err = s.projectOne(ctx, tx, user, groups[0], groups[0].rows[0], true, refused)
	if err == nil && refused[a.key()] {
		reason = refusedReason
	}
	return reason, err
}
