package sequencer_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulsesync/pulsesync/sequencer"
)

// lockAndStore runs one transaction that locks user's sequence, takes n ids and stores them. It
// returns the block, so a caller can see whether the lock found the user's row.
func lockAndStore(ctx context.Context, pool *pgxpool.Pool, user string, n int) (*sequencer.Block, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	batch := &pgx.Batch{}
	block := sequencer.QueueLock(batch, user)
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
	return block, tx.Commit(ctx)
}

func TestQueueLock_MissingUntilCreated(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := t.Context()

	block, err := lockAndStore(ctx, pool, "alice", 3)
	if err != nil {
		t.Fatalf("lock before create: %v", err)
	}
	if !block.Missing() {
		t.Fatalf("a user who never uploaded: Missing() = false, want true")
	}
	for range 2 { // a second Create (a lost race) is harmless
		if err := sequencer.Create(ctx, pool, "alice"); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	for want := int64(3); want <= 6; want += 3 {
		block, err := lockAndStore(ctx, pool, "alice", 3)
		if err != nil {
			t.Fatalf("lock after create: %v", err)
		}
		if block.Missing() || block.Last() != want {
			t.Fatalf("after create: Missing() = %t, Last() = %d, want false and %d", block.Missing(), block.Last(), want)
		}
	}
	if got, err := sequencer.Watermark(ctx, pool, "alice"); err != nil || got != 6 {
		t.Fatalf("Watermark = %d, %v; want 6", got, err)
	}
}

// TestQueueLock_SerialisesOneUser: concurrent transactions of one user each see the previous
// one's store, so the ids they take are dense and never handed out twice (invariant I1).
func TestQueueLock_SerialisesOneUser(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := t.Context()
	if err := sequencer.Create(ctx, pool, "bob"); err != nil {
		t.Fatalf("Create: %v", err)
	}
	const workers, rounds = 8, 10
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				block, err := lockAndStore(ctx, pool, "bob", 1)
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
