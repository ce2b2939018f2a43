package pg

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// slowProjectionsSQL delays every business-table write by up to 15 ms: the time between an
// upload taking its ids and committing, in which the reference server let a later id of the
// same user commit first (docs/protocol-v0.md §10.1).
const slowProjectionsSQL = `
CREATE FUNCTION business.slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(random() * 0.015); RETURN NULL; END $$;
CREATE TRIGGER slow AFTER INSERT OR UPDATE ON business.users FOR EACH STATEMENT EXECUTE FUNCTION business.slow();`

// TestOrdering_PollersNeverSkipAChange is invariant I1 under load: several devices of one user
// upload concurrently (batches of 1 to 10, deliberately slow transactions) while other devices
// poll from their next_after. Every poller must receive every change, and ids must be dense.
func TestOrdering_PollersNeverSkipAChange(t *testing.T) {
	s, pool := newStore(t, StoreConfig{})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, slowProjectionsSQL); err != nil {
		t.Fatal(err)
	}
	const uploaders, pollers = 6, 3
	duration := 3 * time.Second
	if testing.Short() {
		duration = time.Second
	}
	stop := make(chan struct{})
	var applied sync.Map // "source/scid" → true, every change an uploader saw applied
	var total int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for d := range uploaders {
		wg.Go(func() {
			source := fmt.Sprintf("uploader-%d", d)
			rng := rand.New(rand.NewPCG(uint64(d), 1))
			scid := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := []int{1, 1, 3, 10}[rng.IntN(4)]
				changes := make([]ChangeInput, n)
				for i := range changes {
					scid++
					changes[i] = userChange(scid, fmt.Sprintf("%08x-0000-4000-8000-%012x", d, scid), 0, "u")
				}
				res, err := s.Upload(ctx, "alice", source, changes)
				if err != nil {
					t.Errorf("%s: upload: %v", source, err)
					return
				}
				for _, out := range res.Outcomes {
					if out.Status != StatusApplied || out.NewVersion != 1 {
						t.Errorf("%s: %+v, want applied", source, out)
						return
					}
					applied.Store(fmt.Sprintf("%s/%d", source, out.SourceChangeID), true)
				}
				mu.Lock()
				total += int64(n)
				mu.Unlock()
			}
		})
	}
	received := make([]map[string]bool, pollers)
	var pollWG sync.WaitGroup
	for p := range pollers {
		received[p] = map[string]bool{}
		pollWG.Go(func() {
			source := fmt.Sprintf("poller-%d", p)
			rng := rand.New(rand.NewPCG(uint64(100+p), 2))
			cursor := int64(0)
			drain := func() int {
				page, err := s.Download(ctx, "alice", source, DownloadQuery{After: cursor, Limit: 1 + rng.IntN(20)})
				if err != nil {
					t.Errorf("%s: download: %v", source, err)
					return 0
				}
				for _, e := range page.Changes {
					received[p][fmt.Sprintf("%s/%d", e.SourceID, e.SourceChangeID)] = true
				}
				cursor = max(cursor, page.NextAfter)
				return len(page.Changes)
			}
			for {
				select {
				case <-stop:
					wg.Wait() // every upload has committed: a final drain must find everything left
					for drain() > 0 {
					}
					return
				default:
					drain()
				}
			}
		})
	}
	time.Sleep(duration) // the length of the load, not a synchronisation
	close(stop)
	wg.Wait()
	pollWG.Wait()

	watermark, err := s.Watermark(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if watermark != total {
		t.Errorf("watermark %d after %d applied changes: ids are not dense", watermark, total)
	}
	for p := range pollers {
		missed := 0
		applied.Range(func(key, _ any) bool {
			if !received[p][key.(string)] {
				missed++
			}
			return true
		})
		if missed > 0 || len(received[p]) != int(total) {
			t.Errorf("poller-%d received %d of %d changes, skipped %d", p, len(received[p]), total, missed)
		}
	}
	t.Logf("%d changes uploaded by %d devices, polled by %d devices", total, uploaders, pollers)
}
