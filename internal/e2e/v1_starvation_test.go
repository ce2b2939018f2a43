package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/internal/v1test"
)

// TestV1Starvation_BusyUserDoesNotStarveAnother is docs/protocol-v1.md §6.1 H9 over HTTP: on
// a node with a pool of 4 connections, 24 sources of one user commit bundles as fast as they
// can, so that at any moment some 23 of their calls wait for the user's lock. Meanwhile
// another user pushes a bundle and pulls it, ten times in a row. Waiters for the busy user
// wait in the node's queue, not on pooled connections, so the other user's rounds stay as
// fast as if the node were idle: each under a generous bound, and their median well below the
// busy user's, whose every call queues behind the others.
func TestV1Starvation_BusyUserDoesNotStarveAnother(t *testing.T) {
	srv := servertest.New(t, servertest.Options{V1: true, MaxConns: 4})
	const busySources, rounds = 24, 10
	const roundBound = 3 * time.Second

	var commits, refusals atomic.Int64
	var mu sync.Mutex
	var busyLatencies []time.Duration
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i := range busySources {
		src := newV1Source(t, srv, "hot", fmt.Sprintf("busy-%d", i))
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				_, err := src.pushRows(ctx, 1)
				switch {
				case err == nil:
					commits.Add(1)
					mu.Lock()
					busyLatencies = append(busyLatencies, time.Since(start))
					mu.Unlock()
				case v1test.IsRefusal(err, "service_unavailable"):
					refusals.Add(1) // the lock wait bound passed; a client retries
				case ctx.Err() == nil:
					t.Errorf("busy push %s: %v", src.Source(), err)
					return
				}
			}
		})
	}
	// Let the busy user's queue fill before measuring.
	pushtest.WaitFor(t, func() bool { return commits.Load() >= busySources })

	phone := newV1Source(t, srv, "calm", "phone")
	tablet := v1test.New(srv, "calm", "tablet")
	var checkpoint int64
	var pushes, pulls, whole []time.Duration
	busyBefore, measureStart := commits.Load(), time.Now()
	for range rounds {
		start := time.Now()
		seq := phone.push(t)
		pushed := time.Now()
		var err error
		if checkpoint, err = tablet.PullToStable(t.Context(), checkpoint, 100, func(v1test.Bundle) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if checkpoint != seq {
			t.Fatalf("pulled to %d after committing bundle %d", checkpoint, seq)
		}
		pushes, pulls, whole = append(pushes, pushed.Sub(start)), append(pulls, time.Since(pushed)), append(whole, time.Since(start))
	}
	busyDuring, measured := commits.Load()-busyBefore, time.Since(measureStart)
	stop()
	wg.Wait()

	mu.Lock()
	busy := busyLatencies
	mu.Unlock()
	t.Logf("other user, %d rounds: push p50 %v max %v; pull p50 %v max %v; round p50 %v max %v",
		rounds, median(pushes), slices.Max(pushes), median(pulls), slices.Max(pulls), median(whole), slices.Max(whole))
	t.Logf("busy user: %d sources committed %d bundles in the %v measured (%d in all), push p50 %v max %v, %d refused busy",
		busySources, busyDuring, measured.Round(time.Millisecond), len(busy), median(busy), slices.Max(busy), refusals.Load())
	if m := slices.Max(whole); m > roundBound {
		t.Errorf("the other user's slowest push+pull took %v, want under %v", m, roundBound)
	}
	if median(whole) >= median(busy) {
		t.Errorf("the other user's median round %v is not below the busy user's median push %v: it queued behind the busy user",
			median(whole), median(busy))
	}
}

// median returns the middle of ds (the upper middle for an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
