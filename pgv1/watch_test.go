package pgv1

import (
	"context"
	"testing"
)

// A watch needs an initialized scope (docs/protocol-v1.md §3.12 step 4), and its catch-up
// reads the user's highest committed bundle_seq.
func TestCheckWatch_AndLatestBundleSeq(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newTestStore(t, Config{})
	seedUsers(t, s, "alice", 3, 1)
	mustExec(t, pool, `INSERT INTO sync_v1.scopes (user_id, state, lease_source_id, lease_expires_at, initialization_id)
		VALUES ('leased', 'initializing', 'p', now() + interval '1 hour', gen_random_uuid())`)

	if err := s.CheckWatch(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	wantError(t, s.CheckWatch(ctx, "leased"), "scope_initializing")
	wantError(t, s.CheckWatch(ctx, "nobody"), "scope_uninitialized")
	for user, want := range map[string]int64{"alice": 3, "nobody": 0} {
		if got, err := s.LatestBundleSeq(ctx, user); err != nil || got != want {
			t.Errorf("LatestBundleSeq(%s) = %d, %v; want %d", user, got, err, want)
		}
	}
}
