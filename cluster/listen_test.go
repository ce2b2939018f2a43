package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulsesync/pulsesync/cluster"
	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/sequencer"
)

// listenerFault cuts one node off its LISTEN connection and keeps it from reconnecting until
// heal: the database refuses new connections while the node's listener is terminated.
// Connections already open (pools, the rig's) keep working.
type listenerFault struct {
	r     *rig
	admin *pgx.Conn
}

func newListenerFault(t *testing.T, r *rig) *listenerFault {
	t.Helper()
	admin, err := pgx.Connect(t.Context(), pgtest.Cluster(t).URL("postgres"))
	if err != nil {
		t.Fatalf("connect as admin: %v", err)
	}
	f := &listenerFault{r: r, admin: admin}
	t.Cleanup(func() {
		f.heal(t) // a failed test must not leave the database closed to its cleanup
		_ = admin.Close(context.Background())
	})
	return f
}

func (f *listenerFault) cut(t *testing.T, n *testNode) {
	t.Helper()
	db := pgx.Identifier{f.r.dbName()}.Sanitize()
	if _, err := f.admin.Exec(t.Context(), "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS false"); err != nil {
		t.Fatalf("refuse connections: %v", err)
	}
	var killed int
	err := f.admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND application_name = $2`, f.r.dbName(), "pulsesync-listen:"+n.id).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate node %s's LISTEN connection: %d terminated, err %v", n.id, killed, err)
	}
}

// heal lets the node reconnect. It also runs at cleanup, when t.Context is already done.
func (f *listenerFault) heal(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stateWithin)
	defer cancel()
	db := pgx.Identifier{f.r.dbName()}.Sanitize()
	if _, err := f.admin.Exec(ctx, "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS true"); err != nil {
		t.Errorf("accept connections again: %v", err)
	}
}

func TestListen_LostConnectionRepairedByReconcileOnReconnect(t *testing.T) {
	t.Parallel()
	r := newRig(t, false)
	a := r.node("a", cluster.Config{ReconcileEvery: quietReconcile})
	b := r.node("b", cluster.Config{ReconcileEvery: quietReconcile})
	a.waitHealthy(t, true)
	b.waitHealthy(t, true)
	laptop := b.connectDevice(t, "alice", "laptop")
	fault := newListenerFault(t, r)

	fault.cut(t, b)
	b.waitHealthy(t, false)
	r.upload(a, "alice", "phone", 1) // b hears no NOTIFY of it
	waitFor(t, stateWithin, "node a's flush", func() bool {
		return a.metric(t, "pulsesync_cluster_notify_flushes_total") == 1
	})
	if got := b.metric(t, "pulsesync_cluster_advances_received_total", "notify"); got != 0 {
		t.Fatalf("node b received %v advances by NOTIFY without a LISTEN connection", got)
	}

	fault.heal(t)
	took := laptop.waitSeq(t, 1, stateWithin)
	t.Logf("advance sent while b's listener was down reached it %s after the database accepted connections again", took)
	if !b.Healthy() {
		t.Error("node b unhealthy after reconnecting")
	}
	if got := b.metric(t, "pulsesync_cluster_advances_received_total", "reconcile"); got != 1 {
		t.Errorf("node b received %v advances by reconciliation, want 1 (the one on reconnect)", got)
	}
	if got := b.metric(t, "pulsesync_cluster_reconnects_total", "listen"); got != 1 {
		t.Errorf("node b counted %v LISTEN reconnects, want 1", got)
	}

	r.upload(a, "alice", "phone", 2)
	laptop.waitSeq(t, 2, deliverWithin)
	if got := b.metric(t, "pulsesync_cluster_advances_received_total", "notify"); got != 1 {
		t.Errorf("node b received %v advances by NOTIFY after reconnecting, want 1", got)
	}
}

func TestNotify_CoalescesBurstsIntoFewNotifications(t *testing.T) {
	t.Parallel()
	r := newRig(t, false)
	a := r.node("a", cluster.Config{ReconcileEvery: quietReconcile})
	b := r.node("b", cluster.Config{ReconcileEvery: quietReconcile})
	a.waitHealthy(t, true)
	b.waitHealthy(t, true)

	const users, perUser = 10, 100
	laptops := make([]*device, users)
	phones := make([]*device, users) // the uploading device: its own commits must not wake it
	for u := range users {
		laptops[u] = b.connectDevice(t, fmt.Sprintf("user-%d", u), "laptop")
		phones[u] = b.connectDevice(t, fmt.Sprintf("user-%d", u), "phone")
	}
	for seq := int64(1); seq <= perUser; seq++ {
		for u := range users {
			a.Announce(sequencer.Advance{User: fmt.Sprintf("user-%d", u), Seq: seq, From: seq, Source: "phone", Schemas: []string{"business"}})
		}
	}
	for u := range users {
		laptops[u].waitSeq(t, perUser, deliverWithin)
	}
	notifications := a.metric(t, "pulsesync_cluster_notifications_total")
	t.Logf("%d advances of %d users went out in %v notifications (%v flushes)", users*perUser, users,
		notifications, a.metric(t, "pulsesync_cluster_notify_flushes_total"))
	if notifications > users*perUser/10 {
		t.Errorf("%v notifications for %d advances, want at most a tenth", notifications, users*perUser)
	}
	for u, phone := range phones {
		if seq, _, ok := phone.sub.Next(); ok {
			t.Errorf("phone of user-%d woken to seq %d by its own uploads", u, seq)
		}
	}
}

func TestNotify_SplitsLargeBatchesIntoPayloadsPostgresAccepts(t *testing.T) {
	t.Parallel()
	r := newRig(t, false)
	a := r.node("a", cluster.Config{ReconcileEvery: quietReconcile, FlushEvery: 50 * time.Millisecond})
	b := r.node("b", cluster.Config{ReconcileEvery: quietReconcile})
	a.waitHealthy(t, true)
	b.waitHealthy(t, true)

	const users = 900 // under the early-flush mark, so one flush carries them all
	devices := make([]*device, users)
	name := func(u int) string { return fmt.Sprintf("user-with-a-rather-long-identifier-%04d", u) }
	for u := range devices {
		devices[u] = b.connectDevice(t, name(u), "laptop")
	}
	for u := range users {
		a.Announce(sequencer.Advance{User: name(u), Seq: 7, From: 3, Source: "phone-of-" + name(u), Schemas: []string{"business", "analytics"}})
	}
	for _, d := range devices {
		d.waitSeq(t, 7, deliverWithin)
	}
	if got := a.metric(t, "pulsesync_cluster_notify_flushes_total"); got != 1 {
		t.Errorf("%v flushes, want 1", got)
	}
	// About 130 bytes per advance: 900 of them need at least 15 payloads under 8000 bytes.
	if got := a.metric(t, "pulsesync_cluster_notifications_total"); got < 15 {
		t.Errorf("%v notifications for %d advances of ~130 bytes, want at least 15", got, users)
	}
	if got := a.metric(t, "pulsesync_cluster_publish_failures_total", "notify"); got != 0 {
		t.Errorf("%v advances failed to publish, want 0", got)
	}
}
