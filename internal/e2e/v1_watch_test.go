package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/natsembed"
	"github.com/pulsesync/pulsesync/internal/natstest"
	"github.com/pulsesync/pulsesync/internal/pushtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/internal/v1test"
	"github.com/pulsesync/pulsesync/pgv1/wire"
)

// The v1 counterparts of fanout_test.go: a /sync/watch stream (docs/protocol-v1.md §3.12) on
// one node hears of bundles committed through another, over NATS and over LISTEN/NOTIFY, and
// within the reconciliation interval after each fault of invariant I4.

// v1Pair is pair for two nodes that also serve v1.
func v1Pair(t *testing.T, nats *natsembed.Server, reconcile time.Duration) (a, b *servertest.Server) {
	t.Helper()
	return pairWith(t, servertest.Options{V1: true, ReconcileEvery: reconcile}, nats)
}

// v1Source is one source of a user pushing one-row bundles, with its next source_bundle_id.
type v1Source struct {
	*v1test.Client
	next int64
}

// newV1Source returns source of user on srv, its scope connected (initialized empty the first
// time).
func newV1Source(t *testing.T, srv *servertest.Server, user, source string) *v1Source {
	t.Helper()
	c := v1test.New(srv, user, source)
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &v1Source{Client: c, next: 1}
}

// pushRows commits the source's next bundle of n new users rows and returns it.
func (s *v1Source) pushRows(ctx context.Context, n int) (v1test.Bundle, error) {
	rows := make([]v1test.Row, n)
	for i := range rows {
		rows[i] = v1test.NewUser(wire.NewUUID(), fmt.Sprintf("%s-%d-%d", s.Source(), s.next, i), s.next)
	}
	b, err := s.Push(ctx, s.next, rows)
	if err == nil {
		s.next++
	}
	return b, err
}

// push commits the source's next bundle of one row and returns its bundle_seq.
func (s *v1Source) push(t *testing.T) int64 {
	t.Helper()
	b, err := s.pushRows(t.Context(), 1)
	if err != nil {
		t.Fatalf("push %s/%d: %v", s.Source(), s.next, err)
	}
	return b.BundleSeq
}

// watchWithin reads w until it is told about bundleSeq and fails if that takes longer than
// limit.
func watchWithin(t *testing.T, w *v1test.Watch, bundleSeq int64, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	w.ReadUntil(bundleSeq)
	took := time.Since(start)
	if took > limit {
		t.Fatalf("watch told about bundle %d after %v, want within %v", bundleSeq, took, limit)
	}
	return took
}

// TestV1Watch_HearsBundleCommittedOnAnotherNode, over NATS and over LISTEN/NOTIFY, with
// reconciliation far away so that only the fan-out stream can deliver.
func TestV1Watch_HearsBundleCommittedOnAnotherNode(t *testing.T) {
	for _, transport := range []string{"nats", "listen"} {
		t.Run(transport, func(t *testing.T) {
			var nats *natsembed.Server
			if transport == "nats" {
				nats = natstest.Start(t)
			}
			a, b := v1Pair(t, nats, time.Hour)
			phone := newV1Source(t, b, "alice", "phone")
			w := v1test.New(a, "alice", "laptop").Watch(t, 0)
			for range 3 {
				seq := phone.push(t)
				took := watchWithin(t, w, seq, 2*time.Second)
				t.Logf("%s: bundle %d heard on the other node after %v", transport, seq, took)
			}
		})
	}
}

// TestV1Watch_NATSStoppedMidTest: while NATS is down, a bundle committed on node B still
// reaches the watch on node A through reconciliation; after NATS is back, bundles flow over it
// again.
func TestV1Watch_NATSStoppedMidTest(t *testing.T) {
	nats := natstest.Start(t)
	a, b := v1Pair(t, nats, reconcileEvery)
	phone := newV1Source(t, b, "alice", "phone")
	w := v1test.New(a, "alice", "laptop").Watch(t, 0)
	watchWithin(t, w, phone.push(t), 2*time.Second)

	nats.Stop()
	pushtest.WaitFor(t, func() bool { return !a.Node.Cluster.Healthy() && !b.Node.Cluster.Healthy() })
	t.Logf("NATS down: heard after %v", watchWithin(t, w, phone.push(t), 4*reconcileEvery))

	if err := nats.Restart(); err != nil {
		t.Fatal(err)
	}
	pushtest.WaitFor(t, func() bool { return a.Node.Cluster.Healthy() && b.Node.Cluster.Healthy() })
	watchWithin(t, w, phone.push(t), 4*reconcileEvery)
}

// TestV1Watch_ListenConnectionKilled: node A's LISTEN connection is terminated by the
// database; a bundle committed on B meanwhile still reaches A's watch, and later ones arrive
// over NOTIFY again.
func TestV1Watch_ListenConnectionKilled(t *testing.T) {
	a, b := v1Pair(t, nil, reconcileEvery)
	phone := newV1Source(t, b, "alice", "phone")
	w := v1test.New(a, "alice", "laptop").Watch(t, 0)
	watchWithin(t, w, phone.push(t), 2*time.Second)

	var killed int
	err := a.Pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'pulsesync-listen:node-a'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d LISTEN connections (%v), want node A's one", killed, err)
	}
	t.Logf("LISTEN connection killed: heard after %v", watchWithin(t, w, phone.push(t), 4*reconcileEvery))
	pushtest.WaitFor(t, func() bool { return a.Node.Cluster.Healthy() })
	watchWithin(t, w, phone.push(t), 4*reconcileEvery)
}

// TestV1Watch_CommittingNodeDiesBeforeAnnouncing: node B commits a bundle and dies before
// announcing it (its fan-out is gone); the watch on A hears through reconciliation.
func TestV1Watch_CommittingNodeDiesBeforeAnnouncing(t *testing.T) {
	for _, transport := range []string{"nats", "listen"} {
		t.Run(transport, func(t *testing.T) {
			var nats *natsembed.Server
			if transport == "nats" {
				nats = natstest.Start(t)
			}
			a, b := v1Pair(t, nats, reconcileEvery)
			phone := newV1Source(t, b, "alice", "phone")
			w := v1test.New(a, "alice", "laptop").Watch(t, 0)
			b.Node.Cluster.Close() // from here B commits but tells nobody
			t.Logf("%s: announcement lost, heard after %v", transport, watchWithin(t, w, phone.push(t), 4*reconcileEvery))
		})
	}
}

// TestV1Watch_BehindOnConnectHearsAtOnce: a watch whose after_bundle_seq is below the user's
// highest bundle_seq gets an event for it at once, with nothing committed after it connected
// and reconciliation far away; one connecting at the highest gets no catch-up, so its first
// event is the next bundle.
func TestV1Watch_BehindOnConnectHearsAtOnce(t *testing.T) {
	srv := servertest.New(t, servertest.Options{V1: true, ReconcileEvery: time.Hour})
	phone := newV1Source(t, srv, "alice", "phone")
	var last int64
	for range 3 {
		last = phone.push(t)
	}
	laptop := v1test.New(srv, "alice", "laptop")
	start := time.Now()
	if e := laptop.Watch(t, 1).Read(); e.BundleSeq != last {
		t.Fatalf("catch-up event %+v, want bundle_seq %d", e, last)
	}
	t.Logf("catch-up event after %v", time.Since(start))

	current := laptop.Watch(t, last)
	next := phone.push(t)
	if e := current.Read(); e.BundleSeq != next {
		t.Fatalf("first event of a watch connected at %d: %+v, want bundle_seq %d", last, e, next)
	}
}
