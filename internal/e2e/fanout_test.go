package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/natsembed"
	"github.com/pulsesync/pulsesync/internal/natstest"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
)

// reconcileEvery is the reconciliation interval of the fault tests: a device must hear of a
// change the fan-out lost within it (the tests allow a few intervals on a shared machine).
const reconcileEvery = 400 * time.Millisecond

// pair starts two nodes on one database. With nats they fan out over it; otherwise over
// Postgres LISTEN/NOTIFY.
func pair(t *testing.T, nats *natsembed.Server, reconcile time.Duration) (a, b *servertest.Server) {
	t.Helper()
	return pairWith(t, servertest.Options{ReconcileEvery: reconcile}, nats)
}

// pairWith is pair for nodes started with opts (its NodeID, NATSURL and DatabaseURL set here):
// node-a on a fresh database, node-b sharing it.
func pairWith(t *testing.T, opts servertest.Options, nats *natsembed.Server) (a, b *servertest.Server) {
	t.Helper()
	opts.NodeID = "node-a"
	if nats != nil {
		opts.NATSURL = nats.URL()
	}
	a = servertest.New(t, opts)
	opts.DatabaseURL, opts.NodeID = a.DatabaseURL, "node-b"
	b = servertest.New(t, opts)
	return a, b
}

// listen connects alice's laptop to srv and reads its ready frame.
func listen(t *testing.T, srv *servertest.Server) *pushtest.WS {
	t.Helper()
	ws := pushtest.Dial(t, srv.URL, "after=0", srv.Token("alice", "laptop"))
	if f := ws.Read(); f.Type != "ready" {
		t.Fatalf("first frame %+v, want ready", f)
	}
	return ws
}

// hearWithin reads until ws is told about seq and fails if that takes longer than limit.
func hearWithin(t *testing.T, ws *pushtest.WS, seq int64, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ws.ReadUntil(seq)
	took := time.Since(start)
	if took > limit {
		t.Fatalf("told about seq %d after %v, want within %v", seq, took, limit)
	}
	return took
}

// TestFanout_DeviceOnOneNodeHearsUploadOnAnother, over NATS and over LISTEN/NOTIFY, with
// reconciliation far away so that only the stream can deliver.
func TestFanout_DeviceOnOneNodeHearsUploadOnAnother(t *testing.T) {
	for _, transport := range []string{"nats", "listen"} {
		t.Run(transport, func(t *testing.T) {
			var nats *natsembed.Server
			if transport == "nats" {
				nats = natstest.Start(t)
			}
			a, b := pair(t, nats, time.Hour)
			ws := listen(t, a)
			for i := range int64(3) {
				seq := upload(t, b, "alice", "phone", 1+i, 1)
				took := hearWithin(t, ws, seq, 2*time.Second)
				t.Logf("%s: seq %d heard on the other node after %v", transport, seq, took)
			}
		})
	}
}

// TestFanout_NATSStoppedMidTest: while NATS is down, an upload on node B still reaches the
// device on node A through reconciliation; after NATS is back, uploads flow over it again.
func TestFanout_NATSStoppedMidTest(t *testing.T) {
	nats := natstest.Start(t)
	a, b := pair(t, nats, reconcileEvery)
	ws := listen(t, a)
	hearWithin(t, ws, upload(t, b, "alice", "phone", 1, 1), 2*time.Second)

	nats.Stop()
	pushtest.WaitFor(t, func() bool { return !a.Node.Cluster.Healthy() && !b.Node.Cluster.Healthy() })
	hearWithin(t, ws, upload(t, b, "alice", "phone", 2, 1), 4*reconcileEvery)

	if err := nats.Restart(); err != nil {
		t.Fatal(err)
	}
	pushtest.WaitFor(t, func() bool { return a.Node.Cluster.Healthy() && b.Node.Cluster.Healthy() })
	hearWithin(t, ws, upload(t, b, "alice", "phone", 3, 1), 4*reconcileEvery)
}

// TestFanout_ListenConnectionKilled: node A's LISTEN connection is terminated by the database;
// an upload on B meanwhile still reaches A's device, and later ones arrive over NOTIFY again.
func TestFanout_ListenConnectionKilled(t *testing.T) {
	a, b := pair(t, nil, reconcileEvery)
	ws := listen(t, a)
	hearWithin(t, ws, upload(t, b, "alice", "phone", 1, 1), 2*time.Second)

	var killed int
	err := a.Pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'pulsesync-listen:node-a'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d LISTEN connections (%v), want node A's one", killed, err)
	}
	hearWithin(t, ws, upload(t, b, "alice", "phone", 2, 1), 4*reconcileEvery)
	pushtest.WaitFor(t, func() bool { return a.Node.Cluster.Healthy() })
	hearWithin(t, ws, upload(t, b, "alice", "phone", 3, 1), 4*reconcileEvery)
}

// TestFanout_UploadingNodeDiesAfterCommit: node B commits an upload and dies before announcing
// it (its fan-out is gone); the device on A hears through reconciliation.
func TestFanout_UploadingNodeDiesAfterCommit(t *testing.T) {
	for _, transport := range []string{"nats", "listen"} {
		t.Run(transport, func(t *testing.T) {
			var nats *natsembed.Server
			if transport == "nats" {
				nats = natstest.Start(t)
			}
			a, b := pair(t, nats, reconcileEvery)
			ws := listen(t, a)
			b.Node.Cluster.Close() // from here B commits but tells nobody
			hearWithin(t, ws, upload(t, b, "alice", "phone", 1, 1), 4*reconcileEvery)
		})
	}
}
