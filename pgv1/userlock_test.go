package pgv1

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/sequencer"
)

// takeSeq is a locked step that allocates one bundle_seq and records it.
func takeSeq(ctx context.Context, tx pgx.Tx, seq *sequencer.Block) (int64, error) {
	n := seq.Take(1)
	b := &pgx.Batch{}
	seq.QueueStore(b)
	return n, tx.SendBatch(ctx, b).Close()
}

// A hot user waits in the process's queue, not on pooled connections: with a pool of 4, one
// call of alice holding her lock and 20 more waiting, bob's call completes while alice's holder
// still holds; alice's calls then run one at a time and allocate dense seqs.
func TestInUserLock_HotUserDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 4)
	s := NewStore(pool, nil, Config{LockWait: time.Minute})
	ctx := t.Context()

	hold := make(chan struct{})
	holding := make(chan struct{})
	var inside, maxInside atomic.Int32
	var mu sync.Mutex
	var seqs []int64
	run := func(first bool) error {
		return s.inUserLock(ctx, "alice", func(ctx context.Context, tx pgx.Tx, seq *sequencer.Block) error {
			n := inside.Add(1)
			defer inside.Add(-1)
			for m := maxInside.Load(); n > m && !maxInside.CompareAndSwap(m, n); m = maxInside.Load() {
			}
			if first {
				close(holding)
				<-hold
			}
			got, err := takeSeq(ctx, tx, seq)
			mu.Lock()
			seqs = append(seqs, got)
			mu.Unlock()
			return err
		})
	}
	errs := make(chan error, 21)
	go func() { errs <- run(true) }()
	<-holding
	for range 20 {
		go func() { errs <- run(false) }()
	}
	pushtest.WaitFor(t, func() bool { // 20 alice calls queued behind the holder
		s.queues.mu.Lock()
		defer s.queues.mu.Unlock()
		e := s.queues.users["alice"]
		return e != nil && e.refs == 21
	})

	bobCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := s.inUserLock(bobCtx, "bob", func(ctx context.Context, tx pgx.Tx, seq *sequencer.Block) error {
		_, err := takeSeq(ctx, tx, seq)
		return err
	})
	if err != nil {
		t.Fatalf("bob's call while alice is hot: %v", err)
	}
	if inside.Load() != 1 {
		t.Fatalf("alice's holder should still hold the lock when bob finishes; %d inside", inside.Load())
	}
	close(hold)
	for range 21 {
		if err := <-errs; err != nil {
			t.Fatalf("alice's call: %v", err)
		}
	}
	if maxInside.Load() != 1 {
		t.Errorf("at most one alice call may run at once, saw %d", maxInside.Load())
	}
	seen := map[int64]bool{}
	for _, n := range seqs {
		seen[n] = true
	}
	for n := int64(1); n <= 21; n++ {
		if !seen[n] {
			t.Errorf("seq %d missing from alice's allocations %v", n, seqs)
		}
	}
	if got, err := sequencer.Watermark(ctx, pool, sequencer.BundleStream("alice")); err != nil || got != 21 {
		t.Errorf("alice's watermark = %d, %v; want 21", got, err)
	}
	if n := s.queues.size(); n != 0 {
		t.Errorf("%d user queue entries left after all calls ended, want 0", n)
	}
}

// A call whose user stays busy past LockWait is refused with 503 service_unavailable: both
// when the holder is in this process (the queue) and on another node (the database lock).
func TestInUserLock_WaitBoundGives503(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 4)
	holder := NewStore(pool, nil, Config{LockWait: time.Minute})
	local := NewStore(pool, nil, Config{LockWait: 300 * time.Millisecond})
	ctx := t.Context()

	for _, tc := range []struct {
		name   string
		holder *Store // the store whose call holds alice's lock
	}{
		{"same process", local},
		{"another node", holder},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hold, holding, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				done <- tc.holder.inUserLock(ctx, "alice", func(context.Context, pgx.Tx, *sequencer.Block) error {
					close(holding)
					<-hold
					return nil
				})
			}()
			<-holding
			err := local.inUserLock(ctx, "alice", func(context.Context, pgx.Tx, *sequencer.Block) error { return nil })
			close(hold)
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != "service_unavailable" || pe.RetryAfter != 1 {
				t.Errorf("busy user: got %v, want *Error service_unavailable with RetryAfter 1", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("holder: %v", err)
			}
		})
	}
}

// fn's error rolls back everything the transaction did, the sequence move included.
func TestInUserLock_ErrorRollsBack(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 2)
	s := NewStore(pool, nil, Config{})
	boom := errors.New("boom")
	err := s.inUserLock(t.Context(), "alice", func(ctx context.Context, tx pgx.Tx, seq *sequencer.Block) error {
		if _, err := takeSeq(ctx, tx, seq); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want fn's error", err)
	}
	if got, _ := sequencer.Watermark(t.Context(), pool, sequencer.BundleStream("alice")); got != 0 {
		t.Errorf("watermark after a failed call = %d, want 0", got)
	}
}
