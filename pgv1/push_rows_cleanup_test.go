package pgv1

import (
	"testing"
)

// stagedCount is the number of rows staged for push session id.
func stagedCount(t *testing.T, s *Store, id string) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM sync_v1.push_rows WHERE push_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// push_rows has no foreign key to push_sessions, so every way a session ends must remove its
// staged rows itself: commit, DELETE, hard replace by a new session of the same tuple, and the
// removal of the user's expired sessions when the user creates one.
func TestPushRows_LeaveWithTheirSession(t *testing.T) {
	t.Parallel()
	s, _, c := newAliceStore(t, Config{})
	ctx := t.Context()
	rows := []PushRow{usersPushRow("INSERT", uuidA, 0, "x")}
	staged := func(sbid int64) string {
		id := createSession(t, s, c, sbid, rows, "")
		if _, err := s.StageChunk(ctx, c, id, 0, rows); err != nil {
			t.Fatalf("stage: %v", err)
		}
		if n := stagedCount(t, s, id); n != 1 {
			t.Fatalf("%d rows staged, want 1", n)
		}
		return id
	}

	replaced := staged(1)
	replacing := staged(1)
	if n := stagedCount(t, s, replaced); n != 0 {
		t.Errorf("hard replace left %d staged rows of the replaced session", n)
	}
	if err := s.DeletePushSession(ctx, c, replacing); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if n := stagedCount(t, s, replacing); n != 0 {
		t.Errorf("DELETE left %d staged rows", n)
	}

	committed := staged(1)
	if _, err := s.CommitPush(ctx, c, committed); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if n := stagedCount(t, s, committed); n != 0 {
		t.Errorf("commit left %d staged rows", n)
	}

	expired := staged(2)
	exec(t, s, `UPDATE sync_v1.push_sessions SET expires_at = now() - interval '1 second' WHERE push_id = $1`, expired)
	other := Caller{User: "alice", Source: "b"}
	createSession(t, s, other, 1, []PushRow{usersPushRow("INSERT", uuidB, 0, "y")}, "")
	if n := stagedCount(t, s, expired); n != 0 {
		t.Errorf("removing the user's expired sessions left %d staged rows", n)
	}
}

// A call reads its push session FOR UPDATE (readPushSessionSQL), which stands in for the foreign
// key: the sweeper skips a session a call holds, even past its expiry, so it never deletes the
// session and its rows while the call stages rows for it.
func TestPushSweep_SkipsHeldSession(t *testing.T) {
	t.Parallel()
	s, _, c := newAliceStore(t, Config{})
	ctx := t.Context()
	rows := []PushRow{usersPushRow("INSERT", uuidA, 0, "x")}
	id := createSession(t, s, c, 1, rows, "")
	if _, err := s.StageChunk(ctx, c, id, 0, rows); err != nil {
		t.Fatalf("stage: %v", err)
	}
	exec(t, s, `UPDATE sync_v1.push_sessions SET expires_at = now() - interval '1 second' WHERE push_id = $1`, id)

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := readPushSession(tx.QueryRow(ctx, readPushSessionSQL, id), c, id); err == nil {
		t.Fatal("the expired session read as live")
	}
	if n, err := s.sweepPushSessions(ctx); err != nil || n != 0 {
		t.Fatalf("sweep while the session is held: %d, %v; want 0 removed", n, err)
	}
	if n := stagedCount(t, s, id); n != 1 {
		t.Fatalf("%d staged rows left while the session is held, want 1", n)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.sweepPushSessions(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after release: %d, %v; want 1 removed", n, err)
	}
	if n := stagedCount(t, s, id); n != 0 {
		t.Fatalf("%d staged rows left after the sweep", n)
	}
}
