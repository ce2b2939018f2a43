package cluster_test

import (
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/cluster"
)

// TestTransport_AdvanceReachesOtherNode: over either transport, an advance announced on node a
// reaches a device on node b well under a second, without reconciliation, and a node never
// receives its own advances back.
func TestTransport_AdvanceReachesOtherNode(t *testing.T) {
	for _, tc := range []struct {
		transport string
		nats      bool
		path      string
	}{{"LISTEN/NOTIFY", false, "notify"}, {"NATS", true, "nats"}} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, tc.nats)
			a := r.node("a", cluster.Config{ReconcileEvery: quietReconcile})
			b := r.node("b", cluster.Config{ReconcileEvery: quietReconcile})
			a.waitHealthy(t, true)
			b.waitHealthy(t, true)
			laptop := b.connectDevice(t, "alice", "laptop")

			r.upload(a, "alice", "phone", 1)
			took := laptop.waitSeq(t, 1, deliverWithin)
			t.Logf("advance crossed nodes over %s in %s", tc.transport, took)
			if took > time.Second {
				t.Errorf("advance took %s over %s, want well under a second", took, tc.transport)
			}
			if got := b.metric(t, "pulsesync_cluster_advances_received_total", tc.path); got != 1 {
				t.Errorf("node b received %v advances by %s, want 1", got, tc.path)
			}
			if got := a.metric(t, "pulsesync_cluster_advances_received_total", tc.path); got != 0 {
				t.Errorf("node a received %v advances by %s, want 0: it must not hear its own", got, tc.path)
			}
		})
	}
}
