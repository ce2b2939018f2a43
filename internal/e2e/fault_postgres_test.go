package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/pushtest"
)

// TestFault_PostgresRestartedMidLoad: PostgreSQL goes down while devices upload to two nodes
// and comes back. Pass rule: every upload answered 200 is in the stream, once, in a dense
// stream; uploads in flight during the outage fail with 5xx (never 4xx, never a false 200) and
// their retries converge; /ready answers 503 while the database is gone and 200 once it is
// back; both nodes' LISTEN connections come back, and a device hears another node's upload
// again within the reconciliation bound.
//
// It restarts the test binary's shared cluster, so it must not run in parallel with others.
func TestFault_PostgresRestartedMidLoad(t *testing.T) {
	a, b := pair(t, nil, reconcileEvery)
	ws := listen(t, a)
	ld := startLoad(t, a.Client, nodes(a.URL, b.URL), []string{"alice", "bob"}, 3, 20)
	phone := newDevice(t, b.Client, "alice", "phone")
	hearWithin(t, ws, sendOne(t, phone, b.URL, ld.ledger), 2*time.Second)
	ld.waitAcked(t, 300)

	cluster := pgtest.Cluster(t)
	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() { // the shared cluster must run again whatever happens here
		if !restarted {
			_ = cluster.StartServer(context.Background())
		}
	})
	waitReady(t, a.Client, a.URL, http.StatusServiceUnavailable)
	waitReady(t, b.Client, b.URL, http.StatusServiceUnavailable)
	pushtest.WaitFor(t, func() bool { // uploads in flight or started during the outage fail
		byStatus, _ := ld.failures()
		return byStatus[http.StatusInternalServerError] > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cluster.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	waitReady(t, a.Client, a.URL, http.StatusOK)
	waitReady(t, b.Client, b.URL, http.StatusOK)
	ld.waitAcked(t, 300)
	ld.end(t)
	hearWithin(t, ws, sendOne(t, phone, b.URL, ld.ledger), 4*reconcileEvery)

	byStatus, transport := ld.failures()
	for status := range byStatus {
		if status < 500 {
			t.Errorf("uploads during the outage answered %d (%d times), want only 5xx", status, byStatus[status])
		}
	}
	if transport > 0 {
		t.Errorf("%d uploads got no answer, want a 5xx for every failed one", transport)
	}
	n := checkAll(t, a.Client, a.URL, ld.ledger)
	t.Logf("%d acknowledged changes durable after the restart; failed attempts by status %v", n, byStatus)

	var listeners int
	err := a.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pulsesync-listen:node-%'`).Scan(&listeners)
	if err != nil || listeners != 2 {
		t.Fatalf("%d LISTEN connections after the restart (%v), want both nodes'", listeners, err)
	}
}
