package pgv1

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/pgv1/wire"
	"github.com/pulsesync/pulsesync/sequencer"
)

// scope is a user's scope row as a mutating call sees it under the user's lock, an expired
// lease already cleared.
type scope struct {
	state         string // uninitialized | initializing | initialized
	initID        string // the lease's initialization_id, "" without a lease
	leaseSource   string
	leaseExpires  time.Time
	retryAfter    int // whole seconds until the lease ends, at least 1
	retainedFloor int64
}

// lockScopeSQL creates the user's scope row if missing, clears an expired lease (the scope is
// then uninitialized again, docs/protocol-v1.md §1.1) and returns the row. Expiry is judged by
// the database clock. No row lock is needed: every v1 mutation of the user runs under the
// user's lock (inUserLock), which this statement follows.
const lockScopeSQL = `
WITH ins AS (
    INSERT INTO sync_v1.scopes (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING
), cleared AS (
    UPDATE sync_v1.scopes
    SET state = 'uninitialized', initialization_id = NULL, lease_source_id = NULL, lease_expires_at = NULL
    WHERE user_id = $1 AND state = 'initializing' AND lease_expires_at <= now()
    RETURNING user_id
)
SELECT state, coalesce(initialization_id::text, ''), coalesce(lease_source_id, ''),
       coalesce(lease_expires_at, now()),
       greatest(1, ceil(extract(epoch FROM coalesce(lease_expires_at, now()) - now())))::int,
       retained_floor, EXISTS (SELECT FROM cleared)
FROM sync_v1.scopes WHERE user_id = $1`

// queueLockScope queues lockScopeSQL into batch; scanScope reads its result into sc.
func queueLockScope(batch *pgx.Batch, user string, sc *scope) {
	batch.Queue(lockScopeSQL, user).Query(func(rows pgx.Rows) error { return scanScope(rows, sc) })
}

// scanScope reads lockScopeSQL's result. The statement's SELECT sees the row as it was before
// the statement: a row it creates reads as absent (uninitialized, floor 0), a lease it clears
// still reads as held, which the cleared flag corrects.
func scanScope(rows pgx.Rows, sc *scope) error {
	defer rows.Close()
	*sc = scope{state: "uninitialized"}
	var cleared bool
	for rows.Next() {
		if err := rows.Scan(&sc.state, &sc.initID, &sc.leaseSource, &sc.leaseExpires, &sc.retryAfter, &sc.retainedFloor, &cleared); err != nil {
			return fmt.Errorf("lock scope: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock scope: %w", err)
	}
	if cleared {
		sc.state, sc.initID, sc.leaseSource = "uninitialized", "", ""
	}
	return nil
}

// setScopeSQL moves the scope to a new state; a lease is set (or refreshed) when $3 is not
// NULL, and its expiry, by the database clock, is returned.
const setScopeSQL = `
INSERT INTO sync_v1.scopes AS s (user_id, state, initialization_id, lease_source_id, lease_expires_at)
VALUES ($1, $2, $3::uuid, $4, CASE WHEN $3::uuid IS NULL THEN NULL ELSE now() + $5 * interval '1 microsecond' END)
ON CONFLICT (user_id) DO UPDATE
SET state = EXCLUDED.state, initialization_id = EXCLUDED.initialization_id,
    lease_source_id = EXCLUDED.lease_source_id, lease_expires_at = EXCLUDED.lease_expires_at
RETURNING coalesce(lease_expires_at, now())`

// setScope stores the scope's new state; initID "" drops the lease.
func (s *Store) setScope(ctx context.Context, tx pgx.Tx, user, state, initID, source string) (time.Time, error) {
	var expires time.Time
	if err := tx.QueryRow(ctx, setScopeSQL, s.setScopeArgs(user, state, initID, source)...).Scan(&expires); err != nil {
		return time.Time{}, fmt.Errorf("set scope state: %w", err)
	}
	return expires.UTC(), nil
}

// queueSetScope queues setScope into batch, for a caller that needs not the lease's expiry.
func (s *Store) queueSetScope(batch *pgx.Batch, user, state, initID, source string) {
	batch.Queue(setScopeSQL, s.setScopeArgs(user, state, initID, source)...)
}

// setScopeArgs are setScopeSQL's arguments.
func (s *Store) setScopeArgs(user, state, initID, source string) []any {
	var id, src any
	if initID != "" {
		id, src = initID, source
	}
	return []any{user, state, id, src, s.cfg.LeaseTTL.Microseconds()}
}

// readScope reads user's scope inside tx, which holds the user's lock.
func readScope(ctx context.Context, tx pgx.Tx, user string) (scope, error) {
	var sc scope
	batch := &pgx.Batch{}
	queueLockScope(batch, user, &sc)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return scope{}, err
	}
	return sc, nil
}

// Connect resolves POST /sync/connect with the decision table of docs/protocol-v1.md §3.2,
// under the user's lock: an initialized scope is remote_authoritative; a scope nobody is
// initializing becomes initialized (nothing to upload) or initializing under a new lease owned
// by the caller; the lease owner may refresh or give up its lease; anyone else is told to retry
// when the lease ends.
func (s *Store) Connect(ctx context.Context, c Caller, hasLocalPendingRows bool) (ConnectResult, error) {
	var res ConnectResult
	err := s.inUserLock(ctx, c.User, func(ctx context.Context, tx pgx.Tx, _ *sequencer.Block) error {
		res = ConnectResult{}
		sc, err := readScope(ctx, tx, c.User)
		if err != nil {
			return err
		}
		switch {
		case sc.state == "initialized":
			res.Resolution = RemoteAuthoritative
		case sc.state == "initializing" && sc.leaseSource != c.Source:
			res.Resolution, res.LeaseExpiresAt, res.RetryAfterSeconds = RetryLater, sc.leaseExpires.UTC(), sc.retryAfter
		case !hasLocalPendingRows:
			res.Resolution = InitializeEmpty
			_, err = s.setScope(ctx, tx, c.User, "initialized", "", "")
		default:
			res.Resolution, res.InitializationID = InitializeLocal, sc.initID
			if res.InitializationID == "" {
				res.InitializationID = wire.NewUUID()
			}
			res.LeaseExpiresAt, err = s.setScope(ctx, tx, c.User, "initializing", res.InitializationID, c.Source)
		}
		return err
	})
	if err != nil {
		return ConnectResult{}, wrap("connect", err)
	}
	return res, nil
}
