package pgv1

import "context"

// sweepPushSessionsSQL removes push sessions past their expiry, by the database clock, with
// their staged rows, a bounded batch at a time. Sessions a call holds right now are skipped,
// not waited for: that call judges them itself.
const sweepPushSessionsSQL = `
WITH swept AS (
    DELETE FROM sync_v1.push_sessions
    WHERE push_id IN (SELECT push_id FROM sync_v1.push_sessions
                      WHERE expires_at <= now()
                      LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING push_id
), staged AS (
    DELETE FROM sync_v1.push_rows WHERE push_id IN (SELECT push_id FROM swept)
)
SELECT count(*) FROM swept`

// sweepPushSessions removes every expired push session, of every user, and returns how many.
// A user's own expired sessions also go when the user next creates one (docs/protocol-v1.md
// §3.3 step 3); this catches the sessions of users who never come back.
func (s *Store) sweepPushSessions(ctx context.Context) (int64, error) {
	return s.sweepInBatches(ctx, sweepPushSessionsSQL, "sweep push sessions")
}
