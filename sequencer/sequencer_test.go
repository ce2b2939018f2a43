package sequencer_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/sequencer"
)

// lockAndStore runs one transaction that locks user's sequence (creating it first when create is
// set), takes n ids and stores them; commit false rolls the transaction back instead. It returns
// the block, so a caller can see whether the lock found the user's row.
func lockAndStore(ctx context.Context, pool *pgxpool.Pool, user string, n int, create, commit bool) (*sequencer.Block, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	batch := &pgx.Batch{}
	block := sequencer.QueueLock(batch, user, create)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, err
	}
	if block.Missing() {
		return block, nil
	}
	block.Take(n)
	batch = &pgx.Batch{}
	block.QueueStore(batch)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, err
	}
	if !commit {
		return block, tx.Rollback(ctx)
	}
	return block, tx.Commit(ctx)
}

// firstUpload takes n ids for user as an upload does: a plain lock, and when the user has no
// sequence row yet, a second transaction that creates it.
func firstUpload(ctx context.Context, pool *pgxpool.Pool, user string, n int) (*sequencer.Block, error) {
	block, err := lockAndStore(ctx, pool, user, n, false, true)
	if err != nil || !block.Missing() {
		return block, err
	}
	return lockAndStore(ctx, pool, user, n, true, true)
}

func TestQueueLock_MissingUntilCreated(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := t.Context()

	block, err := lockAndStore(ctx, pool, "alice", 3, false, true)
	if err != nil {
		t.Fatalf("lock before create: %v", err)
	}
	if !block.Missing() {
		t.Fatalf("a user who never uploaded: Missing() = false, want true")
	}
	for want := int64(3); want <= 6; want += 3 {
		// Creating a row that exists (a lost race) is harmless.
		block, err := lockAndStore(ctx, pool, "alice", 3, true, true)
		if err != nil {
			t.Fatalf("create and lock: %v", err)
		}
		if block.Missing() || block.Last() != want {
			t.Fatalf("after create: Missing() = %t, Last() = %d, want false and %d", block.Missing(), block.Last(), want)
		}
	}
	if got, err := sequencer.Watermark(ctx, pool, "alice"); err != nil || got != 6 {
		t.Fatalf("Watermark = %d, %v; want 6", got, err)
	}
}

// TestQueueLock_CreateRolledBackLeavesNoRow: a refused first upload (its transaction rolled
// back) leaves no sequence row behind, so refused requests change nothing.
func TestQueueLock_CreateRolledBackLeavesNoRow(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := t.Context()

	block, err := lockAndStore(ctx, pool, "carol", 2, true, false)
	if err != nil {
		t.Fatalf("create and lock: %v", err)
	}
	if block.Missing() || block.Last() != 2 {
		t.Fatalf("inside the transaction: Missing() = %t, Last() = %d, want false and 2", block.Missing(), block.Last())
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sync.user_seq WHERE user_id = 'carol'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Fatalf("sequence rows of carol after rollback = %d, want 0", rows)
	}
}

// TestQueueLock_SerialisesOneUser: concurrent transactions of one user, the first of them racing
// to create the user's sequence row, each see the previous one's store, so the ids they take are
// dense and never handed out twice (invariant I1).
func TestQueueLock_SerialisesOneUser(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := t.Context()
	const workers, rounds = 8, 10
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				block, err := firstUpload(ctx, pool, "bob", 1)
				if err != nil {
					t.Errorf("lockAndStore: %v", err)
					return
				}
				mu.Lock()
				if seen[block.Last()] {
					t.Errorf("id %d handed out twice", block.Last())
				}
				seen[block.Last()] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for id := int64(1); id <= workers*rounds; id++ {
		if !seen[id] {
			t.Errorf("id %d never handed out: ids are not dense", id)
		}
	}
}
