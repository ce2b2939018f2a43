package cluster_test

import (
	"testing"

	"github.com/pulsesync/pulsesync/cluster"
)

// trusted reports whether n's watermarks trust a value read now, as a poll would use them.
func (n *testNode) trusted(user string, seq int64) bool {
	n.wm.Begin(user)
	n.wm.Fill(user, seq)
	got, ok := n.wm.Lookup(user)
	return ok && got == seq
}

func TestHealth_FollowsTheStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		withNATS bool
		cut      func(t *testing.T, r *rig, n *testNode) (heal func())
	}{
		{"nats server down", true, func(t *testing.T, r *rig, _ *testNode) func() {
			r.nats.Stop()
			return func() {
				if err := r.nats.Restart(); err != nil {
					t.Fatalf("restart NATS: %v", err)
				}
			}
		}},
		{"listen connection lost", false, func(t *testing.T, r *rig, n *testNode) func() {
			f := newListenerFault(t, r)
			f.cut(t, n)
			return func() { f.heal(t) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, tt.withNATS)
			n := r.node("a", cluster.Config{ReconcileEvery: quietReconcile})
			n.waitHealthy(t, true)
			if !n.trusted("alice", 1) {
				t.Fatal("watermarks not trusted while the stream is up")
			}
			if got := n.metric(t, "pulsesync_cluster_stream_healthy"); got != 1 {
				t.Errorf("stream_healthy = %v while up, want 1", got)
			}

			heal := tt.cut(t, r, n)
			n.waitHealthy(t, false)
			if _, ok := n.wm.Lookup("alice"); ok {
				t.Error("watermark filled before the fault still trusted after it")
			}
			if n.trusted("bob", 1) {
				t.Error("watermarks trusted while the stream is down")
			}
			if got := n.metric(t, "pulsesync_cluster_stream_healthy"); got != 0 {
				t.Errorf("stream_healthy = %v while down, want 0", got)
			}

			heal()
			n.waitHealthy(t, true)
			if !n.trusted("bob", 2) {
				t.Error("watermarks not trusted after the stream came back")
			}
			if got := n.metric(t, "pulsesync_cluster_stream_healthy"); got != 1 {
				t.Errorf("stream_healthy = %v after recovery, want 1", got)
			}
		})
	}
}
