package pgv1

import (
	"context"
	"testing"
)

// Status aggregates the users' floors and seqs and reports this process's event counters.
func TestStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newTestStore(t, Config{})
	if st, err := s.Status(ctx); err != nil || st != (Status{}) {
		t.Fatalf("empty store: %+v, %v", st, err)
	}
	seedUsers(t, s, "alice", 5, 1)
	seedUsers(t, s, "bob", 2, 1)
	if err := s.SetRetentionFloor(ctx, "alice", 1); err != nil {
		t.Fatal(err)
	}
	mustExec(t, pool, `UPDATE sync_v1.scopes SET retained_floor = 4 WHERE user_id = 'bob'`) // ahead of bob's 2
	_, err := s.Pull(ctx, Caller{User: "alice"}, PullRequest{MaxBundles: 1})
	wantError(t, err, "history_pruned")

	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Status{
		LatestBundleSeqMax:       5,
		RetainedBundleFloorMin:   1,
		RetainedBundleFloorMax:   4,
		RetainedBundleWindowMin:  0,
		RetainedBundleWindowMax:  4,
		RetentionFloorAheadCount: 1,
		CommittedBundleCount:     7,
		HistoryPrunedErrorCount:  1,
	}
	if st != want {
		t.Fatalf("status\n%+v\nwant\n%+v", st, want)
	}
}
