package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/internal/v1test"
)

// goGroup runs goroutines that stop together: the first error cancels the group's context
// and is the one Wait returns.
type goGroup struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newGoGroup(ctx context.Context) *goGroup {
	g := &goGroup{}
	g.ctx, g.cancel = context.WithCancel(ctx)
	return g
}

func (g *goGroup) Go(fn func(ctx context.Context) error) {
	g.wg.Go(func() {
		if err := fn(g.ctx); err != nil {
			g.once.Do(func() { g.err = err })
			g.cancel()
		}
	})
}

func (g *goGroup) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

// TestV1Order_ConcurrentSourcesPullersSeeEveryBundleOnceInOrder is invariant I1 for bundles
// (docs/protocol-v1.md §1.3) over HTTP on two nodes: four sources of one user push bundles
// concurrently through both nodes while three other sources pull to stable_bundle_seq from
// their own checkpoints in a loop, in small pages. Every puller must receive every bundle
// exactly once and in order: each bundle it is handed is its checkpoint + 1, so a bundle that
// became visible after a higher one (a reader skipping it for ever) fails the test at once.
// Each pulled bundle's hash is recomputed from its rows, and what the pullers read must equal
// what the commits and committed-row reads answered.
func TestV1Order_ConcurrentSourcesPullersSeeEveryBundleOnceInOrder(t *testing.T) {
	a, b := pairWith(t, servertest.Options{V1: true}, nil)
	nodes := []*servertest.Server{a, b}
	const pushers, perSource, rowsPerBundle, pullers, pageBundles = 4, 12, 3, 3, 4
	const total = pushers * perSource

	var mu sync.Mutex
	committed := map[int64]v1test.Meta{} // bundle_seq → what its commit answered
	var pushing atomic.Int32
	pushing.Store(pushers)

	g := newGoGroup(t.Context())
	for p := range pushers {
		src := newV1Source(t, nodes[p%2], "dora", fmt.Sprintf("writer-%d", p))
		g.Go(func(ctx context.Context) error {
			defer pushing.Add(-1)
			for range perSource {
				b, err := src.pushRows(ctx, rowsPerBundle)
				if err != nil {
					return fmt.Errorf("push %s: %w", src.Source(), err)
				}
				// A client reads back what it committed (§3.5) before it moves on.
				read, err := src.CommittedRows(ctx, b.BundleSeq)
				if err != nil {
					return fmt.Errorf("read back %s bundle %d: %w", src.Source(), b.BundleSeq, err)
				}
				if read.Meta != b.Meta {
					return fmt.Errorf("bundle %d: committed rows say %+v, the commit said %+v", b.BundleSeq, read.Meta, b.Meta)
				}
				mu.Lock()
				prev, dup := committed[b.BundleSeq]
				committed[b.BundleSeq] = b.Meta
				mu.Unlock()
				if dup {
					return fmt.Errorf("bundle_seq %d answered to two commits: %+v and %+v", b.BundleSeq, prev, b.Meta)
				}
			}
			return nil
		})
	}
	seen := make([][]v1test.Meta, pullers)
	pulls := make([]int, pullers)
	for r := range pullers {
		c := v1test.New(nodes[r%2], "dora", fmt.Sprintf("reader-%d", r))
		g.Go(func(ctx context.Context) error {
			var checkpoint int64
			for {
				done := pushing.Load() == 0 // read before the pull: after it, no commit is missing
				var err error
				checkpoint, err = c.PullToStable(ctx, checkpoint, pageBundles, func(b v1test.Bundle) error {
					if want := int64(len(seen[r])) + 1; b.BundleSeq != want {
						return fmt.Errorf("reader-%d was handed bundle %d after %d bundles, want %d", r, b.BundleSeq, len(seen[r]), want)
					}
					seen[r] = append(seen[r], b.Meta)
					return nil
				})
				pulls[r]++
				if err != nil {
					return fmt.Errorf("reader-%d: %w", r, err)
				}
				if done {
					return nil
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	if got := slices.Sorted(maps.Keys(committed)); len(got) != total || got[0] != 1 || got[total-1] != total {
		t.Fatalf("commits answered bundle_seqs %v, want 1…%d", got, total)
	}
	nextOf := map[string]int64{}
	for seq := int64(1); seq <= total; seq++ {
		m := committed[seq]
		if nextOf[m.SourceID]++; m.SourceBundleID != nextOf[m.SourceID] {
			t.Fatalf("bundle %d is %s/%d, want that source's bundle %d: a source's bundles out of order", seq, m.SourceID, m.SourceBundleID, nextOf[m.SourceID])
		}
	}
	for r := range pullers {
		if len(seen[r]) != total {
			t.Fatalf("reader-%d received %d bundles, want %d", r, len(seen[r]), total)
		}
		for i, m := range seen[r] {
			if m != committed[m.BundleSeq] {
				t.Fatalf("reader-%d bundle %d: pulled %+v, committed %+v", r, i+1, m, committed[m.BundleSeq])
			}
		}
	}
	t.Logf("%d bundles of %d rows from %d sources on 2 nodes; readers pulled to stable %v times", total, rowsPerBundle, pushers, pulls)
}
