package e2e

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

// TestMemory_FlatUnderAFloodWithSlowReaders is invariant I5 on a whole server: with 40 devices
// of one user connected — 10 of which never read — 10,000 commits leave the server's heap where
// it was, every reading device ends at the last seq, and a device that never reads costs at most
// one writer blocked until the write timeout drops it.
//
// The commits are announced as the upload handler announces them (Cluster.Announce after each
// commit). Real uploads of one user serialise on the user's lock at a few milliseconds each;
// they add nothing to what this test measures, the push path, but half a minute to the suite.
func TestMemory_FlatUnderAFloodWithSlowReaders(t *testing.T) {
	srv := servertest.New(t, servertest.Options{Push: push.Config{WriteTimeout: time.Second}})
	const readers, stalled, commits = 30, 10, 10_000

	var lastSeen [readers]atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range readers {
		ws := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", fmt.Sprintf("reader-%d", i)))
		wg.Go(func() {
			for {
				f, err := ws.ReadWithin(time.Minute)
				if err != nil || ctx.Err() != nil {
					return
				}
				lastSeen[i].Store(f.Seq)
			}
		})
	}
	for i := range stalled {
		pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", fmt.Sprintf("stalled-%d", i))) // never read
	}
	floodIsFlat(t, srv, lastSeen[:], stalled, commits, func(n int64, source string) sequencer.Advance {
		return sequencer.Advance{User: "alice", Seq: n, From: n, Source: source, Schemas: []string{"business"}}
	})
	cancel()
}

// floodIsFlat is the measure of invariant I5 that both protocols' memory tests share. Once
// srv holds every stream (len(lastSeen) reading ones, each storing the last seq it was told
// about, and stalled ones never read), 8 writers announce advances 1 to n, as commits announce
// them (Cluster.Announce), each built by advance from its seq and the writer's source. It
// fails unless every reading stream ends at n, the heap stays flat and at most one writer per
// stalled stream is left blocked.
func floodIsFlat(t *testing.T, srv *servertest.Server, lastSeen []atomic.Int64, stalled int, n int64,
	advance func(seq int64, source string) sequencer.Advance) {
	t.Helper()
	streams := len(lastSeen) + stalled
	pushtest.WaitFor(t, func() bool { return srv.Node.Hub.Connections() == streams })
	heapBefore, goroutinesBefore := settle()

	var next atomic.Int64
	var flood sync.WaitGroup
	for d := range 8 {
		flood.Go(func() {
			for {
				seq := next.Add(1)
				if seq > n {
					return
				}
				srv.Node.Cluster.Announce(advance(seq, fmt.Sprintf("writer-%d", d)))
			}
		})
	}
	flood.Wait()
	pushtest.WaitFor(t, func() bool {
		for i := range lastSeen {
			if lastSeen[i].Load() != n {
				return false
			}
		}
		return true
	})
	heapAfter, goroutinesAfter := settle()
	t.Logf("heap %d → %d bytes, goroutines %d → %d, for %d streams and %d advances",
		heapBefore, heapAfter, goroutinesBefore, goroutinesAfter, streams, n)
	// Nothing may queue per stream: the flood may cost the heap a fixed amount (pools,
	// statement caches), never something that grows with the advances.
	if growth := int64(heapAfter) - int64(heapBefore); growth > 2<<20 {
		t.Errorf("heap grew by %d bytes over the flood, want flat (under 2 MiB)", growth)
	}
	if goroutinesAfter > goroutinesBefore+stalled {
		t.Errorf("goroutines %d → %d over the flood, want at most one blocked writer per stalled stream", goroutinesBefore, goroutinesAfter)
	}
}

// settle collects garbage until the heap stops shrinking and reports it and the goroutines.
func settle() (heapInUse uint64, goroutines int) {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
		time.Sleep(50 * time.Millisecond) // let finishing goroutines exit; not a synchronisation
	}
	runtime.ReadMemStats(&m)
	return m.HeapInuse, runtime.NumGoroutine()
}
