package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pulsesync/pulsesync/cluster"
	"github.com/pulsesync/pulsesync/internal/natsembed"
	"github.com/pulsesync/pulsesync/internal/natstest"
	"github.com/pulsesync/pulsesync/internal/pgtest"
	"github.com/pulsesync/pulsesync/internal/servertest"
	"github.com/pulsesync/pulsesync/pg"
	"github.com/pulsesync/pulsesync/push"
	"github.com/pulsesync/pulsesync/sequencer"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{Template: servertest.Template})
}

// Waits of the tests: long enough for a loaded CI machine, and each test says what it expects
// in its own terms (latencies are logged).
const (
	deliverWithin = 5 * time.Second // an advance over a healthy stream
	stateWithin   = 10 * time.Second
	// quietReconcile keeps periodic reconciliation out of a test that proves a stream path.
	quietReconcile = time.Hour
)

// rig is one test's database and, for the NATS transport, broker, shared by its nodes.
type rig struct {
	t    *testing.T
	url  string
	db   *pgxpool.Pool // the test's own connections: commits, faults
	nats *natsembed.Server
}

// newRig prepares a fresh database and, if withNATS, a NATS server.
func newRig(t *testing.T, withNATS bool) *rig {
	t.Helper()
	r := &rig{t: t, url: pgtest.NewDB(t)}
	r.db = connect(t, r.url)
	if withNATS {
		r.nats = natstest.Start(t)
	}
	return r
}

// connect opens a pool that the test's cleanup closes.
func connect(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Connect(t.Context(), pg.PoolConfig{URL: url})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// testNode is a node with its own pool, hub, watermarks and metrics, as in its own process.
type testNode struct {
	*cluster.Node
	id  string
	hub *push.Hub
	wm  *sequencer.Watermarks
	reg *prometheus.Registry
}

// node starts a node on the rig. Fields of cfg left zero get the rig's pool, NATS URL, a fresh
// hub, watermarks and registry; the node is closed at cleanup, before its pool.
func (r *rig) node(id string, cfg cluster.Config) *testNode {
	r.t.Helper()
	n := &testNode{id: id, hub: push.NewHub(), wm: sequencer.NewWatermarks(sequencer.WatermarksConfig{}), reg: prometheus.NewRegistry()}
	cfg.NodeID = id
	if cfg.Pool == nil {
		cfg.Pool = connect(r.t, r.url)
	}
	if cfg.NATSURL == "" && r.nats != nil {
		cfg.NATSURL = r.nats.URL()
	}
	cfg.Hub, cfg.Watermarks, cfg.Registry = n.hub, n.wm, n.reg
	node, err := cluster.Start(r.t.Context(), cfg)
	if err != nil {
		r.t.Fatalf("start node %s: %v", id, err)
	}
	r.t.Cleanup(node.Close)
	n.Node = node
	return n
}

// commit records seq as user's last committed id, as an upload's commit does.
func (r *rig) commit(user string, seq int64) {
	r.t.Helper()
	_, err := r.db.Exec(r.t.Context(), `INSERT INTO sync.user_seq AS s (user_id, last_seq) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET last_seq = greatest(s.last_seq, excluded.last_seq)`, user, seq)
	if err != nil {
		r.t.Fatalf("commit seq %d of %s: %v", seq, user, err)
	}
}

// upload commits seq for user and announces it on n, as a node does after an upload.
func (r *rig) upload(n *testNode, user, source string, seq int64) {
	r.t.Helper()
	r.commit(user, seq)
	n.Announce(sequencer.Advance{User: user, Seq: seq, From: seq, Source: source, Schemas: []string{"business"}})
}

// dbName is the name of the rig's database.
func (r *rig) dbName() string {
	r.t.Helper()
	cfg, err := pgx.ParseConfig(r.url)
	if err != nil {
		r.t.Fatalf("parse database URL: %v", err)
	}
	return cfg.Database
}

// device is a hub subscription whose wake-ups the test can wait for.
type device struct {
	sub  *push.Subscription
	wake chan struct{}
	seq  int64 // the last seq it was told
}

// connectDevice subscribes a device of user to n's hub and watches the user, in the order a
// session does.
func (n *testNode) connectDevice(t *testing.T, user, source string) *device {
	t.Helper()
	d := &device{wake: make(chan struct{}, 1)}
	d.sub = n.hub.Subscribe(push.SubscribeOptions{User: user, Source: source, Wake: func() {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}})
	t.Cleanup(d.sub.Close)
	if err := n.Watch(t.Context(), user); err != nil {
		t.Fatalf("node %s: watch %s: %v", n.id, user, err)
	}
	return d
}

// waitSeq waits until the device has been told seq or more, and returns how long that took.
func (d *device) waitSeq(t *testing.T, seq int64, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		if s, _, ok := d.sub.Next(); ok {
			d.seq = s
		}
		if d.seq >= seq {
			return time.Since(began)
		}
		select {
		case <-d.wake:
		case <-deadline.C:
			t.Fatalf("device of %s: told seq %d after %s, want %d", d.sub.User(), d.seq, within, seq)
		}
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitHealthy waits until the node's health is want.
func (n *testNode) waitHealthy(t *testing.T, want bool) {
	t.Helper()
	waitFor(t, stateWithin, fmt.Sprintf("node %s healthy=%v", n.id, want), func() bool { return n.Healthy() == want })
}

// metric returns the value of a counter or gauge of the node, or a histogram's sample count,
// for the series with the given label values (in the order the metric declares its labels).
func (n *testNode) metric(t *testing.T, name string, labelValues ...string) float64 {
	t.Helper()
	families, err := n.reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labelValues) {
				continue
			}
			for i, l := range m.GetLabel() {
				if l.GetValue() != labelValues[i] {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0 // a labelled series not yet touched does not exist
}
