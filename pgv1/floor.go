package pgv1

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/sequencer"
)

const (
	// scopeExistsSQL tells a user the store knows from one it does not.
	scopeExistsSQL = `SELECT true FROM sync_v1.scopes WHERE user_id = $1`
	// setFloorSQL sets the user's retained floor.
	setFloorSQL = `UPDATE sync_v1.scopes SET retained_floor = $2 WHERE user_id = $1`
	// dropBundleRowsSQL and dropBundlesSQL discard the history at or below a floor.
	dropBundleRowsSQL = `DELETE FROM sync_v1.bundle_rows WHERE user_id = $1 AND bundle_seq <= $2`
	dropBundlesSQL    = `DELETE FROM sync_v1.bundles WHERE user_id = $1 AND bundle_seq <= $2`
)

// SetRetentionFloor sets user's retained floor and discards the bundles at or below it, under
// the user's lock, for the reference's test route POST /test/retention-floor
// (docs/protocol-v1.md §3.14). A negative floor → 400 invalid_request; a user without v1 state
// → 404 user_state_not_found. The floor is taken as given, even above the user's history, which
// is how tests provoke history_pruned and a floor ahead of history; row versions and tombstones
// stay, so a snapshot still rebuilds any client.
func (s *Store) SetRetentionFloor(ctx context.Context, user string, floor int64) error {
	if floor < 0 {
		return &Error{Code: "invalid_request", Message: "retained_bundle_floor must be non-negative"}
	}
	// Checked before the lock, whose sequence row would otherwise be created for any name;
	// scope rows are never deleted, so the answer holds.
	err := s.pool.QueryRow(ctx, scopeExistsSQL, user).Scan(new(bool))
	if errors.Is(err, pgx.ErrNoRows) {
		return &Error{Code: "user_state_not_found", Message: "no v1 state for this user"}
	}
	if err != nil {
		return fmt.Errorf("look up user state: %w", err)
	}
	return s.inUserLock(ctx, user, func(ctx context.Context, tx pgx.Tx, _ *sequencer.Block) error {
		batch := &pgx.Batch{}
		batch.Queue(setFloorSQL, user, floor)
		batch.Queue(dropBundleRowsSQL, user, floor)
		batch.Queue(dropBundlesSQL, user, floor)
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("set retention floor: %w", err)
		}
		return nil
	})
}
