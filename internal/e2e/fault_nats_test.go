package e2e

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/pulsesync/pulsesync/internal/natstest"
	"github.com/pulsesync/pulsesync/internal/pushtest"
)

// natsOutage is how long NATS stays away in TestFault_NATSGoneUnderLoad:
// PULSESYNC_FAULT_NATS_OUTAGE (a Go duration; the fault as specified is 30s), or 3 s in the
// normal suite, which is already many reconciliation intervals and NATS reconnect attempts.
func natsOutage(t *testing.T) time.Duration {
	s := os.Getenv("PULSESYNC_FAULT_NATS_OUTAGE")
	if s == "" {
		return 3 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("PULSESYNC_FAULT_NATS_OUTAGE=%q is not a positive duration", s)
	}
	return d
}

// TestFault_NATSGoneUnderLoad: NATS stops while devices upload to two nodes, stays away, and
// restarts. Pass rule: uploads never fail because of it; /ready answers 503 on both nodes while
// it is gone and 200 once it is back; all the while a device on one node hears every upload
// of its user made on the other node within the reconciliation bound; afterwards the stream
// holds every acknowledged change once, densely.
func TestFault_NATSGoneUnderLoad(t *testing.T) {
	nats := natstest.Start(t)
	a, b := pair(t, nats, reconcileEvery)
	ws := listen(t, a)
	ld := startLoad(t, a.Client, nodes(a.URL, b.URL), []string{"bob", "carol"}, 2, 20)
	phone := newDevice(t, b.Client, "alice", "phone")
	hearWithin(t, ws, sendOne(t, phone, b.URL, ld.ledger), 2*time.Second)
	ld.waitAcked(t, 100)

	nats.Stop()
	waitReady(t, a.Client, a.URL, http.StatusServiceUnavailable)
	waitReady(t, b.Client, b.URL, http.StatusServiceUnavailable)
	heard := 0
	for end := time.Now().Add(natsOutage(t)); time.Now().Before(end); heard++ {
		hearWithin(t, ws, sendOne(t, phone, b.URL, ld.ledger), 4*reconcileEvery)
	}
	if code := readyStatus(a.Client, a.URL); code != http.StatusServiceUnavailable {
		t.Fatalf("/ready answers %d at the end of the outage, want 503", code)
	}

	if err := nats.Restart(); err != nil {
		t.Fatal(err)
	}
	pushtest.WaitFor(t, func() bool { return a.Node.Cluster.Healthy() && b.Node.Cluster.Healthy() })
	waitReady(t, a.Client, a.URL, http.StatusOK)
	waitReady(t, b.Client, b.URL, http.StatusOK)
	hearWithin(t, ws, sendOne(t, phone, b.URL, ld.ledger), 4*reconcileEvery)
	ld.waitAcked(t, 100)
	ld.end(t)

	if byStatus, transport := ld.failures(); len(byStatus) > 0 || transport > 0 {
		t.Errorf("uploads failed during the NATS outage (by status %v, %d without answer), want none", byStatus, transport)
	}
	n := checkAll(t, a.Client, a.URL, ld.ledger)
	t.Logf("%d changes checked; %d uploads heard through reconciliation while NATS was gone", n, heard)
}
