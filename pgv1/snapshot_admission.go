package pgv1

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxRetryAfter caps the Retry-After of a capacity refusal, in seconds.
const maxRetryAfter = 5

// admission bounds one kind of snapshot work in this process (docs/protocol-v1.md §3.9 step 2,
// §3.10 step 3): at most limit calls run at once, and the others are refused at once, never
// queued. Its zero value is ready to use.
//
// The reference tells every refused client to come back after 1 s, so they all return together
// (§6.2 #7). Here the refusals of one second are spread: the first limit of them get 1 s, the
// next limit 2 s, and so on up to maxRetryAfter, so the Retry-After grows with the crowd.
// Clients add their own jitter on top.
type admission struct {
	inUse atomic.Int64

	mu      sync.Mutex
	second  int64 // the Unix second whose refusals refused counts
	refused int
}

// enter takes a slot if fewer than limit are in use and returns the function that gives it
// back. Otherwise release is nil and retryAfter is the Retry-After in seconds, 1…maxRetryAfter.
func (a *admission) enter(limit int) (release func(), retryAfter int) {
	if a.inUse.Add(1) > int64(limit) {
		a.inUse.Add(-1)
		return nil, a.refuse(limit)
	}
	return func() { a.inUse.Add(-1) }, 0
}

// refuse counts a refusal and returns its Retry-After.
func (a *admission) refuse(limit int) int {
	now := time.Now().Unix()
	a.mu.Lock()
	defer a.mu.Unlock()
	if now != a.second {
		a.second, a.refused = now, 0
	}
	a.refused++
	return min(1+(a.refused-1)/max(limit, 1), maxRetryAfter)
}

// snapshotWork is the admission control of snapshot builds and chunk reads.
type snapshotWork struct {
	builds admission
	chunks admission
}
