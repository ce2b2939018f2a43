package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/internal/v1test"
	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

// TestV1Memory_FlatUnderAFloodWithStalledWatchers is invariant I5 for /sync/watch
// (docs/protocol-v1.md §3.12, events coalesce, latest wins): with 40 watch streams of one user
// open — 10 of which are never read — 10,000 bundle advances leave the server's heap where it
// was, every reading stream ends at the last bundle_seq, and a stream that is never read costs
// at most one writer blocked until the write timeout ends it.
//
// The advances are announced as the commit handler announces them (Cluster.Announce on the
// user's bundle stream after each commit), as memory_test.go does for v0: real commits of one
// user serialise on the user's lock and add nothing to what this measures, the push path.
func TestV1Memory_FlatUnderAFloodWithStalledWatchers(t *testing.T) {
	srv := servertest.New(t, servertest.Options{V1: true, Push: push.Config{WriteTimeout: time.Second}})
	newV1Source(t, srv, "alice", "setup") // initializes the scope; a watch needs it
	const readers, stalled, commits = 30, 10, 10_000

	var lastSeen [readers]atomic.Int64
	var wg sync.WaitGroup
	watches := make([]*v1test.Watch, readers)
	for i := range readers {
		w := v1test.New(srv, "alice", fmt.Sprintf("reader-%d", i)).Watch(t, 0)
		watches[i] = w
		wg.Go(func() {
			for {
				e, err := w.Next(time.Minute)
				if err != nil {
					return // closed at the end of the test
				}
				lastSeen[i].Store(e.BundleSeq)
			}
		})
	}
	for i := range stalled {
		resp, err := v1test.New(srv, "alice", fmt.Sprintf("stalled-%d", i)).OpenWatch(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stalled watch %d: status %d", i, resp.StatusCode)
		}
		// never read
	}
	pushtest.WaitFor(t, func() bool { return srv.Node.Hub.Connections() == readers+stalled })
	heapBefore, goroutinesBefore := settle()

	// The flood: 10,000 bundles of 8 other sources, as their commits announce them.
	stream := sequencer.BundleStream("alice")
	var next atomic.Int64
	var flood sync.WaitGroup
	for d := range 8 {
		flood.Go(func() {
			for {
				n := next.Add(1)
				if n > commits {
					return
				}
				srv.Node.Cluster.Announce(sequencer.Advance{User: stream, Seq: n, From: n,
					Source: fmt.Sprintf("writer-%d", d), At: time.Now()})
			}
		})
	}
	flood.Wait()
	pushtest.WaitFor(t, func() bool {
		for i := range readers {
			if lastSeen[i].Load() != commits {
				return false
			}
		}
		return true
	})
	heapAfter, goroutinesAfter := settle()
	t.Logf("heap %d → %d bytes, goroutines %d → %d, for %d watch streams and %d bundles",
		heapBefore, heapAfter, goroutinesBefore, goroutinesAfter, readers+stalled, commits)
	// Nothing may queue per stream: the flood may cost the heap a fixed amount, never something
	// that grows with the bundles.
	if growth := int64(heapAfter) - int64(heapBefore); growth > 2<<20 {
		t.Errorf("heap grew by %d bytes over the flood, want flat (under 2 MiB)", growth)
	}
	if goroutinesAfter > goroutinesBefore+stalled {
		t.Errorf("goroutines %d → %d over the flood, want at most one blocked writer per stalled stream", goroutinesBefore, goroutinesAfter)
	}
	for _, w := range watches {
		w.Close()
	}
	wg.Wait()
}
