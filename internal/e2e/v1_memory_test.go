package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	stream := sequencer.BundleStream("alice")
	floodIsFlat(t, srv, lastSeen[:], stalled, commits, func(n int64, source string) sequencer.Advance {
		return sequencer.Advance{User: stream, Seq: n, From: n, Source: source, At: time.Now()}
	})
	for _, w := range watches {
		w.Close()
	}
	wg.Wait()
}
