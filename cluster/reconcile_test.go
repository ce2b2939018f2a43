package cluster_test

import (
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/cluster"
)

// transports are the two ways nodes talk, for tests that must hold over both.
var transports = []struct {
	name     string
	withNATS bool
}{
	{"nats", true},
	{"listen", false},
}

func TestReconcile_CommitNeverAnnouncedReachesOtherNode(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			const every = 300 * time.Millisecond
			r := newRig(t, tr.withNATS)
			a := r.node("a", cluster.Config{ReconcileEvery: every})
			b := r.node("b", cluster.Config{ReconcileEvery: every})
			a.waitHealthy(t, true)
			b.waitHealthy(t, true)
			laptop := b.connectDevice(t, "alice", "laptop")
			// Let one round see alice, so the next one owes her everything delivered since.
			rounds := b.metric(t, "pulsesync_cluster_reconcile_duration_seconds")
			r.commit("alice", 1)
			laptop.waitSeq(t, 1, every+deliverWithin)
			waitFor(t, stateWithin, "a reconciliation round", func() bool {
				return b.metric(t, "pulsesync_cluster_reconcile_duration_seconds") > rounds
			})
			repairsBefore := b.metric(t, "pulsesync_cluster_reconcile_repairs_total")

			// The node that committed died before announcing: only the database knows.
			r.commit("alice", 2)
			took := laptop.waitSeq(t, 2, every+deliverWithin)
			t.Logf("unannounced commit reached node b after %s (reconciliation every %s)", took, every)
			if took > every+time.Second {
				t.Errorf("unannounced commit took %s to arrive, want about the reconciliation interval %s", took, every)
			}
			if got := b.metric(t, "pulsesync_cluster_reconcile_repairs_total") - repairsBefore; got != 1 {
				t.Errorf("node b counted %v repairs, want 1", got)
			}
		})
	}
}
