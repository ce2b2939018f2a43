package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/cluster"
)

func TestNATS_WatchConfirmsSubscriptionBeforeReturning(t *testing.T) {
	t.Parallel()
	r := newRig(t, true)
	a := r.node("a", cluster.Config{ReconcileEvery: quietReconcile})
	b := r.node("b", cluster.Config{ReconcileEvery: quietReconcile})
	a.waitHealthy(t, true)
	b.waitHealthy(t, true)
	if got := b.metric(t, "pulsesync_cluster_nats_shards"); got != 0 {
		t.Fatalf("node b is subscribed to %v shards before any Watch, want 0", got)
	}

	// The 20 users fall in 20 different shards, each new to b: an advance published right
	// after Watch returns must not overtake the subscription.
	const users = 20
	for i := range users {
		user := fmt.Sprintf("user-%d", i)
		d := b.connectDevice(t, user, "laptop") // Watch happens here
		r.upload(a, user, "phone", 1)
		d.waitSeq(t, 1, deliverWithin)
	}
	if got := b.metric(t, "pulsesync_cluster_advances_received_total", "nats"); got != users {
		t.Errorf("node b received %v advances over NATS, want %d", got, users)
	}
	if got := b.metric(t, "pulsesync_cluster_nats_shards"); got != users {
		t.Errorf("node b is subscribed to %v shards, want %d", got, users)
	}
}

func TestNATS_IdleShardIsUnsubscribedUnlessAUserIsConnected(t *testing.T) {
	t.Parallel()
	r := newRig(t, true)
	a := r.node("a", cluster.Config{ReconcileEvery: quietReconcile})
	b := r.node("b", cluster.Config{ReconcileEvery: quietReconcile, IdleShardAfter: 200 * time.Millisecond})
	a.waitHealthy(t, true)
	b.waitHealthy(t, true)

	// "poller" only watches (as a long-poll does); "connected" keeps a hub subscription.
	const poller, connected = "poller", "connected-user" // in shards 15 and 52
	if err := b.Watch(t.Context(), poller); err != nil {
		t.Fatalf("watch: %v", err)
	}
	d := b.connectDevice(t, connected, "laptop")
	if got := b.metric(t, "pulsesync_cluster_nats_shards"); got != 2 {
		t.Fatalf("node b is subscribed to %v shards, want 2", got)
	}
	waitFor(t, stateWithin, "idle shard unsubscribed", func() bool {
		return b.metric(t, "pulsesync_cluster_nats_shards") == 1
	})
	r.upload(a, connected, "phone", 1)
	d.waitSeq(t, 1, deliverWithin)

	// Watching again subscribes again, and advances flow.
	p := b.connectDevice(t, poller, "laptop")
	r.upload(a, poller, "phone", 1)
	p.waitSeq(t, 1, deliverWithin)
}

func TestNATS_OutageRepairedByReconciliationThenStreamResumes(t *testing.T) {
	t.Parallel()
	const every = 300 * time.Millisecond
	r := newRig(t, true)
	a := r.node("a", cluster.Config{ReconcileEvery: every})
	b := r.node("b", cluster.Config{ReconcileEvery: every})
	a.waitHealthy(t, true)
	b.waitHealthy(t, true)
	laptop := b.connectDevice(t, "alice", "laptop")

	r.nats.Stop()
	a.waitHealthy(t, false)
	b.waitHealthy(t, false)
	r.upload(a, "alice", "phone", 1)
	took := laptop.waitSeq(t, 1, every+deliverWithin)
	t.Logf("advance announced during the outage reached b after %s (reconciliation every %s)", took, every)
	if b.Healthy() {
		t.Fatal("node b healthy while NATS is down")
	}
	if got := b.metric(t, "pulsesync_cluster_advances_received_total", "reconcile"); got < 1 {
		t.Errorf("node b received %v advances by reconciliation, want at least 1", got)
	}

	if err := r.nats.Restart(); err != nil {
		t.Fatalf("restart NATS: %v", err)
	}
	a.waitHealthy(t, true)
	b.waitHealthy(t, true)
	before := b.metric(t, "pulsesync_cluster_advances_received_total", "nats")
	const later = 5
	for seq := int64(2); seq < 2+later; seq++ {
		r.upload(a, "alice", "phone", seq)
		laptop.waitSeq(t, seq, deliverWithin)
	}
	// a's client may also replay the advance it buffered during the outage: one at most.
	if got := b.metric(t, "pulsesync_cluster_advances_received_total", "nats") - before; got < later-1 {
		t.Errorf("node b received %v advances over NATS after the restart, want at least %d of the %d sent", got, later-1, later)
	}
	for _, n := range []*testNode{a, b} {
		if got := n.metric(t, "pulsesync_cluster_reconnects_total", "nats"); got != 1 {
			t.Errorf("node %s counted %v NATS reconnects, want 1", n.id, got)
		}
	}
}

func TestNATS_StartsWhileServerIsDown(t *testing.T) {
	t.Parallel()
	r := newRig(t, true)
	r.nats.Stop()
	a := r.node("a", cluster.Config{ReconcileEvery: quietReconcile})
	b := r.node("b", cluster.Config{ReconcileEvery: quietReconcile})
	if a.Healthy() || b.Healthy() {
		t.Fatal("a node without a broker reports itself healthy")
	}
	laptop := b.connectDevice(t, "alice", "laptop") // Watch does not block without a broker

	// The reconciliation of the first connect delivers what was committed meanwhile.
	r.commit("alice", 1)
	if err := r.nats.Restart(); err != nil {
		t.Fatalf("restart NATS: %v", err)
	}
	a.waitHealthy(t, true)
	b.waitHealthy(t, true)
	laptop.waitSeq(t, 1, deliverWithin)

	r.upload(a, "alice", "phone", 2)
	laptop.waitSeq(t, 2, deliverWithin)
	if got := b.metric(t, "pulsesync_cluster_reconnects_total", "nats"); got != 0 {
		t.Errorf("node b counted %v reconnects, want 0: its first connection is not a reconnect", got)
	}
}
