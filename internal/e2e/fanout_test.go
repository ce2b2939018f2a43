package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/natsembed"
	"github.com/pulsesync/pulsesync/internal/natstest"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/internal/v1test"
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
	return toldWithin(t, seq, limit, func(seq int64) { ws.ReadUntil(seq) })
}

// toldWithin runs hear, which reads a device's stream until it is told about seq, and fails if
// that took longer than limit; it returns how long it took.
func toldWithin(t *testing.T, seq int64, limit time.Duration, hear func(seq int64)) time.Duration {
	t.Helper()
	start := time.Now()
	hear(seq)
	took := time.Since(start)
	if took > limit {
		t.Fatalf("told about seq %d after %v, want within %v", seq, took, limit)
	}
	return took
}

// fanout is one protocol's part in the fan-out scenarios below: node A and node B on one
// database, alice's laptop listening on A and her phone committing on B.
type fanout struct {
	a, b   *servertest.Server
	commit func(t *testing.T) int64 // the phone commits its next change and returns its seq
	hear   func(seq int64)          // the laptop reads until it is told about seq
}

// heardWithin has the phone commit a change and fails unless the laptop is told about it
// within limit; it returns how long that took.
func (f fanout) heardWithin(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	return toldWithin(t, f.commit(t), limit, f.hear)
}

// fanoutProtocols start the scenarios' nodes and devices for each protocol: a v0 upload heard
// on a push WebSocket (docs/push.md), a v1 bundle heard on a /sync/watch stream
// (docs/protocol-v1.md §3.12). With nats the nodes fan out over it, otherwise over
// LISTEN/NOTIFY.
var fanoutProtocols = []struct {
	name  string
	start func(t *testing.T, nats *natsembed.Server, reconcile time.Duration) fanout
}{
	{"v0", func(t *testing.T, nats *natsembed.Server, reconcile time.Duration) fanout {
		a, b := pair(t, nats, reconcile)
		ws := listen(t, a)
		next := int64(1)
		return fanout{a: a, b: b, hear: func(seq int64) { ws.ReadUntil(seq) }, commit: func(t *testing.T) int64 {
			seq := upload(t, b, "alice", "phone", next, 1)
			next++
			return seq
		}}
	}},
	{"v1", func(t *testing.T, nats *natsembed.Server, reconcile time.Duration) fanout {
		a, b := v1Pair(t, nats, reconcile)
		phone := newV1Source(t, b, "alice", "phone") // first: a watch needs the scope initialized
		w := v1test.New(a, "alice", "laptop").Watch(t, 0)
		return fanout{a: a, b: b, hear: func(seq int64) { w.ReadUntil(seq) }, commit: phone.push}
	}},
}

// forEachProtocol runs scenario once per protocol, as a subtest named for it.
func forEachProtocol(t *testing.T, scenario func(t *testing.T, start func(*testing.T, *natsembed.Server, time.Duration) fanout)) {
	for _, p := range fanoutProtocols {
		t.Run(p.name, func(t *testing.T) { scenario(t, p.start) })
	}
}

// forEachTransport runs scenario once with a NATS server and once without (LISTEN/NOTIFY), as
// subtests named nats and listen.
func forEachTransport(t *testing.T, scenario func(t *testing.T, nats *natsembed.Server)) {
	t.Run("nats", func(t *testing.T) { scenario(t, natstest.Start(t)) })
	t.Run("listen", func(t *testing.T) { scenario(t, nil) })
}

// TestFanout_DeviceOnOneNodeHearsCommitOnAnother, over NATS and over LISTEN/NOTIFY, with
// reconciliation far away so that only the stream can deliver.
func TestFanout_DeviceOnOneNodeHearsCommitOnAnother(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, start func(*testing.T, *natsembed.Server, time.Duration) fanout) {
		forEachTransport(t, func(t *testing.T, nats *natsembed.Server) {
			f := start(t, nats, time.Hour)
			for range 3 {
				t.Logf("heard on the other node after %v", f.heardWithin(t, 2*time.Second))
			}
		})
	})
}

// TestFanout_NATSStoppedMidTest: while NATS is down, a commit on node B still reaches the
// device on node A through reconciliation; after NATS is back, commits flow over it again.
func TestFanout_NATSStoppedMidTest(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, start func(*testing.T, *natsembed.Server, time.Duration) fanout) {
		nats := natstest.Start(t)
		f := start(t, nats, reconcileEvery)
		f.heardWithin(t, 2*time.Second)

		nats.Stop()
		pushtest.WaitFor(t, func() bool { return !f.a.Node.Cluster.Healthy() && !f.b.Node.Cluster.Healthy() })
		t.Logf("NATS down: heard after %v", f.heardWithin(t, 4*reconcileEvery))

		if err := nats.Restart(); err != nil {
			t.Fatal(err)
		}
		pushtest.WaitFor(t, func() bool { return f.a.Node.Cluster.Healthy() && f.b.Node.Cluster.Healthy() })
		f.heardWithin(t, 4*reconcileEvery)
	})
}

// TestFanout_ListenConnectionKilled: node A's LISTEN connection is terminated by the database;
// a commit on B meanwhile still reaches A's device, and later ones arrive over NOTIFY again.
func TestFanout_ListenConnectionKilled(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, start func(*testing.T, *natsembed.Server, time.Duration) fanout) {
		f := start(t, nil, reconcileEvery)
		f.heardWithin(t, 2*time.Second)

		var killed int
		err := f.a.Pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = 'pulsesync-listen:node-a'`).Scan(&killed)
		if err != nil || killed != 1 {
			t.Fatalf("terminated %d LISTEN connections (%v), want node A's one", killed, err)
		}
		t.Logf("LISTEN connection killed: heard after %v", f.heardWithin(t, 4*reconcileEvery))
		pushtest.WaitFor(t, func() bool { return f.a.Node.Cluster.Healthy() })
		f.heardWithin(t, 4*reconcileEvery)
	})
}

// TestFanout_CommittingNodeDiesBeforeAnnouncing: node B commits and dies before announcing it
// (its fan-out is gone); the device on A hears through reconciliation.
func TestFanout_CommittingNodeDiesBeforeAnnouncing(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, start func(*testing.T, *natsembed.Server, time.Duration) fanout) {
		forEachTransport(t, func(t *testing.T, nats *natsembed.Server) {
			f := start(t, nats, reconcileEvery)
			f.b.Node.Cluster.Close() // from here B commits but tells nobody
			t.Logf("announcement lost, heard after %v", f.heardWithin(t, 4*reconcileEvery))
		})
	})
}
