package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulsesync/pulsesync/sequencer"
)

// reconcileTimeout bounds one round's query; a round that times out is retried at the next tick.
const reconcileTimeout = 30 * time.Second

// reconciler periodically, and on demand after the stream (re)connects, reads the latest seq of
// every user with a connection on this node and delivers it as an advance with nothing but
// user and seq known. It is what keeps invariant I4 when the stream loses an advance.
//
// To count repairs honestly it remembers, per user connected at the previous round, the highest
// seq this node delivered through any path since. A round that finds a higher committed seq
// counts a repair: an advance the stream lost, or one still in flight when the round read the
// database (a trickle of those is normal under write load). Users who connected since the
// previous round are not counted: nothing was owed to them yet.
type reconciler struct {
	n     *Node
	wake  chan struct{} // capacity 1: a round is wanted now
	every time.Duration

	mu   sync.RWMutex
	seen map[string]*atomic.Int64 // users of the previous round → highest seq delivered since
}

func newReconciler(n *Node) *reconciler {
	return &reconciler{n: n, wake: make(chan struct{}, 1), every: n.cfg.ReconcileEvery, seen: map[string]*atomic.Int64{}}
}

// kick asks for a round as soon as the current one, if any, ends.
func (r *reconciler) kick() { signal(r.wake) }

// note records that seq was delivered for user. It costs a map lookup under a read lock.
func (r *reconciler) note(user string, seq int64) {
	r.mu.RLock()
	p := r.seen[user]
	r.mu.RUnlock()
	if p == nil {
		return
	}
	for {
		old := p.Load()
		if seq <= old || p.CompareAndSwap(old, seq) {
			return
		}
	}
}

// run does a round every r.every and whenever kicked, until ctx ends.
func (r *reconciler) run(ctx context.Context) {
	tick := time.NewTicker(r.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.wake:
		}
		r.round(ctx)
	}
}

// round reconciles every user the hub holds subscriptions for.
func (r *reconciler) round(ctx context.Context) {
	began := time.Now()
	users := r.n.cfg.Hub.Users()

	// Track this round's users before reading, so an advance delivered during the read counts.
	r.mu.Lock()
	prev := r.seen
	r.seen = make(map[string]*atomic.Int64, len(users))
	for _, u := range users {
		p := prev[u]
		if p == nil {
			p = new(atomic.Int64)
		}
		r.seen[u] = p
	}
	cur := r.seen
	r.mu.Unlock()

	if len(users) == 0 {
		return
	}
	qctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	latest, err := sequencer.Latest(qctx, r.n.cfg.Pool, users)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			r.n.m.reconcileErrors.Inc()
			r.n.log.Warn("reconciliation failed; retrying at the next round", "users", len(users), "err", err)
		}
		return
	}
	repairs := 0
	for user, seq := range latest {
		if seq <= 0 {
			continue
		}
		if prev[user] != nil && seq > cur[user].Load() {
			repairs++
			r.n.m.repairs.Inc() // before delivering: whoever is woken sees it counted
		}
		r.n.deliver(pathReconcile, sequencer.Advance{User: user, Seq: seq})
	}
	r.n.m.reconcileTime.Observe(time.Since(began).Seconds())
	if repairs > 0 {
		r.n.log.Debug("reconciliation delivered advances the stream had not", "users", len(users), "repairs", repairs)
	}
}
