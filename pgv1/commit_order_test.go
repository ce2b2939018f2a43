package pgv1

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pulsesync/pulsesync/sequencer"
)

// I1 (docs/protocol-v1.md §1.3): concurrent commits of several sources of one user get dense
// bundle_seqs in commit order, each source's in its own sequence; a reader polling meanwhile
// never sees a bundle above the watermark missing or a gap below it.
func TestCommit_ConcurrentSourcesGetDenseSeqsInCommitOrder(t *testing.T) {
	t.Parallel()
	s, pool := newTestStore(t, Config{})
	ctx := t.Context()
	initialized(t, s, Caller{User: "alice", Source: "s0"})
	const sources, perSource = 4, 5

	stop := make(chan struct{})
	var reads atomic.Int64
	readerErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				readerErr <- nil
				return
			default:
			}
			// The watermark first, then the bundles: every seq up to it must be there.
			w, err := sequencer.Watermark(ctx, pool, sequencer.BundleStream("alice"))
			if err != nil {
				readerErr <- err
				return
			}
			var n, maxSeq int64
			if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(max(bundle_seq), 0) FROM sync_v1.bundles WHERE user_id = 'alice' AND bundle_seq <= $1`, w).Scan(&n, &maxSeq); err != nil {
				readerErr <- err
				return
			}
			if n != w || maxSeq != w {
				readerErr <- fmt.Errorf("watermark %d but %d bundles up to it (max %d)", w, n, maxSeq)
				return
			}
			reads.Add(1)
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, sources)
	for i := range sources {
		wg.Go(func() {
			c := Caller{User: "alice", Source: fmt.Sprintf("s%d", i)}
			for sbid := int64(1); sbid <= perSource; sbid++ {
				key := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, sbid)
				if _, err := push(t, s, c, sbid, []PushRow{usersPushRow("INSERT", key, 0, "n")}, pushOpts{}); err != nil {
					errs <- fmt.Errorf("source %s push %d: %w", c.Source, sbid, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := <-readerErr; err != nil {
		t.Fatalf("reader: %v", err)
	}

	rows, err := pool.Query(ctx, `SELECT bundle_seq, source_id, source_bundle_id FROM sync_v1.bundles WHERE user_id = 'alice' ORDER BY bundle_seq`)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	var want int64 = 1
	for rows.Next() {
		var seq, sbid int64
		var src string
		if err := rows.Scan(&seq, &src, &sbid); err != nil {
			t.Fatal(err)
		}
		if seq != want {
			t.Fatalf("bundle_seq %d where %d was due: not dense", seq, want)
		}
		if sbid != last[src]+1 {
			t.Fatalf("source %s: source_bundle_id %d at seq %d after %d", src, sbid, seq, last[src])
		}
		last[src] = sbid
		want++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want-1 != sources*perSource {
		t.Fatalf("%d bundles, want %d", want-1, sources*perSource)
	}
	if w, _ := sequencer.Watermark(ctx, pool, sequencer.BundleStream("alice")); w != sources*perSource {
		t.Fatalf("watermark %d, want %d", w, sources*perSource)
	}
}

// Retention (docs/protocol-v1.md §1.7): the newest RetainBundles bundles stay, a commit
// discards at most PruneBatch, the floor follows, and row states survive.
func TestCommit_RetentionMovesTheFloor(t *testing.T) {
	t.Parallel()
	s, pool, c := newAliceStore(t, Config{RetainBundles: 3, PruneBatch: 2})
	ctx := t.Context()
	floorAfter := []int64{0, 0, 0, 1, 2, 3, 4}
	for sbid := int64(1); sbid <= 7; sbid++ {
		key := fmt.Sprintf("00000000-0000-4000-8000-%012d", sbid)
		mustPush(t, s, c, sbid, []PushRow{usersPushRow("INSERT", key, 0, "n")}, pushOpts{})
		var floor, kept, oldest int64
		if err := pool.QueryRow(ctx, `SELECT retained_floor, (SELECT count(*) FROM sync_v1.bundles WHERE user_id = 'alice'),
			(SELECT coalesce(min(bundle_seq), 0) FROM sync_v1.bundles WHERE user_id = 'alice') FROM sync_v1.scopes WHERE user_id = 'alice'`).Scan(&floor, &kept, &oldest); err != nil {
			t.Fatal(err)
		}
		if floor != floorAfter[sbid-1] || oldest != floor+1 || kept != sbid-floor {
			t.Fatalf("after bundle %d: floor %d, %d bundles from %d; want floor %d", sbid, floor, kept, oldest, floorAfter[sbid-1])
		}
	}
	// A floor far behind moves by PruneBatch per commit.
	exec(t, s, `UPDATE sync_v1.scopes SET retained_floor = 0 WHERE user_id = 'alice'`)
	mustPush(t, s, c, 8, []PushRow{usersPushRow("INSERT", "00000000-0000-4000-8000-000000000008", 0, "n")}, pushOpts{})
	var floor, states int64
	if err := pool.QueryRow(ctx, `SELECT retained_floor, (SELECT count(*) FROM sync_v1.row_state WHERE user_id = 'alice') FROM sync_v1.scopes WHERE user_id = 'alice'`).Scan(&floor, &states); err != nil {
		t.Fatal(err)
	}
	if floor != 2 || states != 8 {
		t.Fatalf("floor %d (want 2, one batch of 2 past 0) and %d row states (want 8)", floor, states)
	}
}
