package pgv1

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/pgv1/wire"
	"github.com/pulsesync/pulsesync/sequencer"
)

// pushSession is a staging session as chunk, commit and delete see it under the user's lock.
type pushSession struct {
	id             string
	user, source   string
	sourceBundleID int64
	planned        int64
	requestHash    string
	initID         string // "" unless a seed push
	next           int64  // next expected row ordinal
	stagedBytes    int64
	expired        bool
}

// readPushSessionSQL reads and locks a session; expiry is judged by the database clock. The
// lock stands in for a foreign key from push_rows: the sweeper, which skips locked sessions,
// cannot delete the session (and its rows) while a call stages or commits them.
const readPushSessionSQL = `
SELECT user_id, source_id, source_bundle_id, planned_row_count, request_hash,
       coalesce(initialization_id::text, ''), next_row_ordinal, staged_bytes, expires_at <= now()
FROM sync_v1.push_sessions WHERE push_id = $1
FOR UPDATE`

// errNoSession is the 404 of an unknown or malformed push_id.
func errNoSession() *Error {
	return &Error{Code: "push_session_not_found", Message: "push session not found"}
}

// readPushSession reads push session id from q and applies the checks every session call
// makes, in the reference order (docs/protocol-v1.md §3.4 step 5, §3.5 step 1, §3.6): unknown
// → 404 push_session_not_found, another user's → 403 push_session_forbidden, and, because a
// push belongs to one writer, another source's → 403 as well (§6.2 #2); past its expiry → 410
// push_session_expired.
func readPushSession(row pgx.Row, c Caller, id string) (pushSession, error) {
	ps := pushSession{id: id}
	err := row.Scan(&ps.user, &ps.source, &ps.sourceBundleID, &ps.planned, &ps.requestHash,
		&ps.initID, &ps.next, &ps.stagedBytes, &ps.expired)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ps, errNoSession()
	case err != nil:
		return ps, fmt.Errorf("read push session: %w", err)
	case ps.user != c.User || ps.source != c.Source:
		return ps, &Error{Code: "push_session_forbidden", Message: "the push session belongs to another writer"}
	case ps.expired:
		return ps, &Error{Code: "push_session_expired", Message: "the push session has expired; create a new one"}
	}
	return ps, nil
}

// deletePushSessionSQL removes a session and its staged rows.
const deletePushSessionSQL = `
WITH staged AS (DELETE FROM sync_v1.push_rows WHERE push_id = $1)
DELETE FROM sync_v1.push_sessions WHERE push_id = $1`

// DeletePushSession resolves DELETE /sync/push-sessions/{push_id} (docs/protocol-v1.md §3.6):
// the caller's live session and its staged rows are dropped. A malformed or unknown id is 404,
// another writer's session 403, an expired one 410.
func (s *Store) DeletePushSession(ctx context.Context, c Caller, pushID string) error {
	if !wire.ValidUUID(pushID) {
		return errNoSession()
	}
	err := s.inUserLock(ctx, c.User, func(ctx context.Context, tx pgx.Tx, _ *sequencer.Block) error {
		if _, err := readPushSession(tx.QueryRow(ctx, readPushSessionSQL, pushID), c, pushID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, deletePushSessionSQL, pushID); err != nil {
			return fmt.Errorf("delete push session: %w", err)
		}
		return nil
	})
	return wrap("delete push session", err)
}
