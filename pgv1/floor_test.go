package pgv1

import (
	"context"
	"testing"
)

// The test route's floor (docs/protocol-v1.md §3.14): an unknown user is 404, a negative floor
// 400; a floor discards the bundles at or below it, pulls and committed-row reads below it are
// refused, and the rows' state survives for snapshots.
func TestSetRetentionFloor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newTestStore(t, Config{})
	seedUsers(t, s, "alice", 5, 1)
	seedUsers(t, s, "bob", 5, 1)

	wantError(t, s.SetRetentionFloor(ctx, "nobody", 1), "user_state_not_found")
	wantError(t, s.SetRetentionFloor(ctx, "alice", -1), "invalid_request")
	if err := s.SetRetentionFloor(ctx, "alice", 3); err != nil {
		t.Fatal(err)
	}
	var bundles, rows int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM sync_v1.bundles WHERE user_id = 'alice'),
		(SELECT count(*) FROM sync_v1.bundle_rows WHERE user_id = 'alice')`).Scan(&bundles, &rows); err != nil {
		t.Fatal(err)
	}
	if bundles != 2 || rows != 2 {
		t.Fatalf("alice keeps %d bundles and %d rows, want 2 and 2", bundles, rows)
	}
	alice := Caller{User: "alice"}
	_, err := s.Pull(ctx, alice, PullRequest{After: 2, MaxBundles: 10})
	wantError(t, err, "history_pruned")
	page, err := s.Pull(ctx, alice, PullRequest{After: 3, MaxBundles: 10})
	if err != nil || len(page.Bundles) != 2 {
		t.Fatalf("pull above the floor: %d bundles, %v", len(page.Bundles), err)
	}
	_, err = s.CommittedRows(ctx, alice, 3, -1, 10)
	wantError(t, err, "history_pruned")
	info, err := s.CreateSnapshot(ctx, alice, nil)
	if err != nil || info.RowCount != 5 {
		t.Fatalf("snapshot after pruning: %+v, %v", info, err)
	}
	if page, err := s.Pull(ctx, Caller{User: "bob"}, PullRequest{MaxBundles: 10}); err != nil || len(page.Bundles) != 5 {
		t.Fatalf("bob's history was touched: %d bundles, %v", len(page.Bundles), err)
	}
}
