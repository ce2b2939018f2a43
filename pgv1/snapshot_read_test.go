package pgv1

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/internal/pushtest"
)

// fiveRowSnapshot seeds five equally large rows for alice and returns a snapshot of them and
// the size of one row.
func fiveRowSnapshot(t *testing.T, cfg Config) (*Store, *pgxpool.Pool, SnapshotInfo, int64) {
	t.Helper()
	s, pool := newTestStore(t, cfg)
	seedUsers(t, s, "alice", 1, 5)
	info, err := s.CreateSnapshot(context.Background(), Caller{User: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, pool, info, info.ByteCount / 5
}

// The paging rule of docs/protocol-v1.md §3.10: rows after after_row_ordinal while fewer than
// max_rows are taken and the byte sum stays within max_bytes; has_more iff a further row did not
// fit; next_row_ordinal the last ordinal returned (after when empty); byte_count their sum.
func TestSnapshotChunk_Paging(t *testing.T) {
	t.Parallel()
	s, _, info, row := fiveRowSnapshot(t, Config{})
	cases := []struct {
		name     string
		after    int64
		maxRows  int
		maxBytes int64
		rows     int
		next     int64
		hasMore  bool
	}{
		{"max_rows cuts", 0, 2, 1 << 20, 2, 2, true},
		{"max_bytes fits exactly", 0, 100, 3 * row, 3, 3, true},
		{"max_bytes one short of three rows", 0, 100, 3*row - 1, 2, 2, true},
		{"the rest", 3, 100, 1 << 20, 2, 5, false},
		{"the rest, exactly to the byte", 3, 2, 2 * row, 2, 5, false},
		{"after the last row", 5, 100, 1 << 20, 0, 5, false},
		{"far after the last row", 9, 100, 1 << 20, 0, 9, false},
		{"max_rows above the cap", 0, 1 << 30, 1 << 40, 5, 5, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chunk, err := s.SnapshotChunk(context.Background(), Caller{User: "alice"}, info.SnapshotID, tc.after, tc.maxRows, tc.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(chunk.Rows) != tc.rows || chunk.NextRowOrdinal != tc.next || chunk.HasMore != tc.hasMore ||
				chunk.ByteCount != int64(tc.rows)*row || chunk.SnapshotBundleSeq != info.SnapshotBundleSeq {
				t.Fatalf("got %d rows, next %d, has_more %v, %d bytes; want %d, %d, %v, %d",
					len(chunk.Rows), chunk.NextRowOrdinal, chunk.HasMore, chunk.ByteCount, tc.rows, tc.next, tc.hasMore, int64(tc.rows)*row)
			}
		})
	}
}

// Every refusal of a chunk read, in the reference's order (docs/protocol-v1.md §3.10), with a
// non-UUID id answered 404 rather than 500 (§6.2 #1).
func TestSnapshotChunk_Refusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, info, row := fiveRowSnapshot(t, Config{})
	expired, err := s.CreateSnapshot(ctx, Caller{User: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, pool, `UPDATE sync_v1.snapshots SET expires_at = now() - interval '1 second' WHERE snapshot_id = $1`, expired.SnapshotID)
	deleted, err := s.CreateSnapshot(ctx, Caller{User: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSnapshot(ctx, Caller{User: "alice"}, deleted.SnapshotID); err != nil {
		t.Fatal(err)
	}

	alice, bob := Caller{User: "alice"}, Caller{User: "bob"}
	cases := []struct {
		name     string
		c        Caller
		id       string
		after    int64
		maxRows  int
		maxBytes int64
		code     string
	}{
		{"§3.10 step 2: after below 0", alice, info.SnapshotID, -1, 10, 1000, "snapshot_chunk_invalid"},
		{"§3.10 step 2: max_rows 0", alice, info.SnapshotID, 0, 0, 1000, "snapshot_chunk_invalid"},
		{"§3.10 step 2: max_bytes 0", alice, info.SnapshotID, 0, 10, 0, "snapshot_chunk_invalid"},
		{"§3.10 step 2 before step 4", bob, "nope", -1, 10, 1000, "snapshot_chunk_invalid"},
		{"§3.10 step 4: not a UUID (§6.2 #1)", alice, "not-a-uuid", 0, 10, 1000, "snapshot_session_not_found"},
		{"§3.10 step 4: upper-case UUID", alice, "AAAAAAAA-0000-4000-8000-000000000000", 0, 10, 1000, "snapshot_session_not_found"},
		{"§3.10 step 4: unknown", alice, "00000000-0000-4000-8000-000000000000", 0, 10, 1000, "snapshot_session_not_found"},
		{"§3.10 step 4: another user's", bob, info.SnapshotID, 0, 10, 1000, "snapshot_session_forbidden"},
		{"§3.10 step 4: another user's expired one", bob, expired.SnapshotID, 0, 10, 1000, "snapshot_session_forbidden"},
		{"§3.10 step 4: expired", alice, expired.SnapshotID, 0, 10, 1000, "snapshot_session_expired"},
		{"§3.10 step 4: deleted", alice, deleted.SnapshotID, 0, 10, 1000, "snapshot_session_expired"},
		{"§3.10 step 4 before step 5: expired and too small", alice, expired.SnapshotID, 0, 10, 1, "snapshot_session_expired"},
		{"§3.10 step 5: first row larger than max_bytes", alice, info.SnapshotID, 0, 10, row - 1, "snapshot_chunk_too_small"},
		{"§3.10 step 5: in the middle", alice, info.SnapshotID, 3, 10, row - 1, "snapshot_chunk_too_small"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.SnapshotChunk(ctx, tc.c, tc.id, tc.after, tc.maxRows, tc.maxBytes)
			e := wantError(t, err, tc.code)
			if tc.code == "snapshot_chunk_too_small" && e.RequiredByteCount != row {
				t.Errorf("required_byte_count %d, want %d", e.RequiredByteCount, row)
			}
		})
	}
}

// Each chunk read slides the expiry to now + SnapshotTTL by the database clock, never past the
// session's hard cap (docs/protocol-v1.md §6.2 #6).
func TestSnapshotChunk_SlidingExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, info, _ := fiveRowSnapshot(t, Config{SnapshotTTL: time.Hour, SnapshotMaxLifetime: 3 * time.Hour})
	alice := Caller{User: "alice"}
	expiry := func() (slid, capped bool) {
		t.Helper()
		err := pool.QueryRow(ctx, `SELECT expires_at BETWEEN now() + interval '59 minutes' AND now() + interval '61 minutes',
				expires_at = hard_expires_at FROM sync_v1.snapshots WHERE snapshot_id = $1`, info.SnapshotID).Scan(&slid, &capped)
		if err != nil {
			t.Fatal(err)
		}
		return slid, capped
	}
	var lifetime bool
	if err := pool.QueryRow(ctx, `SELECT hard_expires_at - created_at = interval '3 hours' FROM sync_v1.snapshots
			WHERE snapshot_id = $1`, info.SnapshotID).Scan(&lifetime); err != nil || !lifetime {
		t.Fatalf("the hard cap is not created_at + SnapshotMaxLifetime (%v)", err)
	}

	// Nearly expired: a read gives it another hour.
	mustExec(t, pool, `UPDATE sync_v1.snapshots SET expires_at = now() + interval '1 second' WHERE snapshot_id = $1`, info.SnapshotID)
	if _, err := s.SnapshotChunk(ctx, alice, info.SnapshotID, 0, 1, 1<<20); err != nil {
		t.Fatal(err)
	}
	if slid, _ := expiry(); !slid {
		t.Fatal("a read did not push the expiry to now + TTL")
	}
	// Near the hard cap: a read slides only up to it.
	mustExec(t, pool, `UPDATE sync_v1.snapshots SET hard_expires_at = now() + interval '10 minutes', expires_at = now() + interval '1 minute'
		WHERE snapshot_id = $1`, info.SnapshotID)
	if _, err := s.SnapshotChunk(ctx, alice, info.SnapshotID, 1, 1, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, capped := expiry(); !capped {
		t.Fatal("a read slid the expiry past the hard cap")
	}
	// Once past its expiry, reads do not revive it.
	mustExec(t, pool, `UPDATE sync_v1.snapshots SET expires_at = now() - interval '1 second' WHERE snapshot_id = $1`, info.SnapshotID)
	_, err := s.SnapshotChunk(ctx, alice, info.SnapshotID, 2, 1, 1<<20)
	wantError(t, err, "snapshot_session_expired")
}

// Admission of chunk reads (docs/protocol-v1.md §3.10 step 3): with one read allowed and one in
// progress (waiting on the session's row lock), another read is refused with 429 at once.
func TestSnapshotChunk_Capacity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, info, _ := fiveRowSnapshot(t, Config{MaxConcurrentSnapshotChunks: 1})
	alice := Caller{User: "alice"}

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM sync_v1.snapshots WHERE snapshot_id = $1 FOR UPDATE`, info.SnapshotID); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, err := s.SnapshotChunk(ctx, alice, info.SnapshotID, 0, 10, 1<<20)
		first <- err
	}()
	pushtest.WaitFor(t, func() bool { return s.snapshots.chunks.inUse.Load() == 1 })

	_, err = s.SnapshotChunk(ctx, alice, info.SnapshotID, 0, 10, 1<<20)
	if e := wantError(t, err, "snapshot_chunk_capacity"); e.RetryAfter < 1 {
		t.Errorf("Retry-After %d", e.RetryAfter)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := s.SnapshotChunk(ctx, alice, info.SnapshotID, 0, 10, 1<<20); err != nil {
		t.Fatalf("after the read ended: %v", err)
	}
}

// DELETE retires logically (docs/protocol-v1.md §3.11): 204 again before cleanup, reads 410,
// another user's 403, unknown or non-UUID 404; the sweeper then removes the session and its
// rows, and the id becomes unknown.
func TestDeleteSnapshot_AndSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, info, _ := fiveRowSnapshot(t, Config{})
	alice, bob := Caller{User: "alice"}, Caller{User: "bob"}
	live, err := s.CreateSnapshot(ctx, alice, nil)
	if err != nil {
		t.Fatal(err)
	}

	wantError(t, s.DeleteSnapshot(ctx, bob, info.SnapshotID), "snapshot_session_forbidden")
	wantError(t, s.DeleteSnapshot(ctx, alice, "00000000-0000-4000-8000-000000000000"), "snapshot_session_not_found")
	wantError(t, s.DeleteSnapshot(ctx, alice, "x"), "snapshot_session_not_found")
	for range 2 {
		if err := s.DeleteSnapshot(ctx, alice, info.SnapshotID); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	_, err = s.SnapshotChunk(ctx, alice, info.SnapshotID, 0, 10, 1<<20)
	wantError(t, err, "snapshot_session_expired")

	if err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = s.SnapshotChunk(ctx, alice, info.SnapshotID, 0, 10, 1<<20)
	wantError(t, err, "snapshot_session_not_found")
	wantError(t, s.DeleteSnapshot(ctx, alice, info.SnapshotID), "snapshot_session_not_found")
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sync_v1.snapshot_rows WHERE snapshot_id = $1`, info.SnapshotID).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows of the swept session left (%v)", left, err)
	}
	if rows := readAll(t, s, alice, live); len(rows) != 5 {
		t.Fatalf("the live session lost rows to the sweep: %d", len(rows))
	}
}

// The sweeper removes sessions in batches until none has expired.
func TestSweep_ManyExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newTestStore(t, Config{})
	mustExec(t, pool, `INSERT INTO sync_v1.snapshots (snapshot_id, user_id, snapshot_bundle_seq, row_count, byte_count, expires_at, hard_expires_at)
		SELECT gen_random_uuid(), 'u' || g, 0, 0, 0, now() - interval '1 second', now() FROM generate_series(1, $1::int) g`, 2*sweepBatch+7)
	n, err := s.sweepSnapshots(ctx)
	if err != nil || n != 2*sweepBatch+7 {
		t.Fatalf("swept %d (%v), want %d", n, err, 2*sweepBatch+7)
	}
	if err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
}
