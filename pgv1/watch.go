package pgv1

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/sequencer"
)

// scopeStateSQL reads what decides whether a user's scope may be read: its state and whether
// its initialization lease is still live by the database clock (docs/protocol-v1.md §1.1).
const scopeStateSQL = `SELECT state, coalesce(lease_expires_at > now(), false)
FROM sync_v1.scopes WHERE user_id = $1`

// checkScopeReadable refuses a pull, snapshot or watch of a scope that is not initialized:
// 409 scope_initializing while a lease is live, 409 scope_uninitialized otherwise, an expired
// lease and a user without state included. A scope never leaves initialized, so a pass stays
// true for the rest of the call.
func (s *Store) checkScopeReadable(ctx context.Context, user string) error {
	var state string
	var leaseLive bool
	err := s.pool.QueryRow(ctx, scopeStateSQL, user).Scan(&state, &leaseLive)
	if errors.Is(err, pgx.ErrNoRows) {
		return scopeRefusal("", false)
	}
	if err != nil {
		return fmt.Errorf("read scope state: %w", err)
	}
	return scopeRefusal(state, leaseLive)
}

// scopeRefusal is the answer of docs/protocol-v1.md §3.8 step 2 (also §3.9 step 3 and §3.12
// step 4) for a scope in state with or without a live lease; nil when the scope is initialized.
func scopeRefusal(state string, leaseLive bool) error {
	switch {
	case state == "initialized":
		return nil
	case state == "initializing" && leaseLive:
		return &Error{Code: "scope_initializing", Message: "scope initialization is in progress; retry after it completes"}
	default:
		return &Error{Code: "scope_uninitialized", Message: "scope is not initialized; connect first"}
	}
}

// CheckWatch answers whether user's scope allows a watch (docs/protocol-v1.md §3.12 step 4):
// nil when it is initialized, a 409 scope_uninitialized / scope_initializing *Error otherwise.
func (s *Store) CheckWatch(ctx context.Context, user string) error {
	return s.checkScopeReadable(ctx, user)
}

// LatestBundleSeq returns user's highest committed bundle_seq, 0 when none. Every bundle up to
// it is visible to any later read (the sequencer's allocation order is its visibility order), so
// a watch that registered its subscriber before asking can send a catch-up event for it.
func (s *Store) LatestBundleSeq(ctx context.Context, user string) (int64, error) {
	return sequencer.Watermark(ctx, s.pool, sequencer.BundleStream(user))
}
